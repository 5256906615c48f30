//! The loopback floor server (see `server.rs`): the reference row of `benches/compare.sh` that
//! shows what this machine's kernel allows a server that does no work.
//!
//!   cargo bench --bench floor -- --addr 127.0.0.1:6390 --protocol resp [--value-size 100]

mod server;

use std::net::TcpListener;
use std::process::ExitCode;

use server::Proto;

const USAGE: &str = "usage: floor --addr HOST:PORT [--protocol resp|memcache] [--value-size N]";

fn bad(arg: &str, value: &str) -> ExitCode {
    eprintln!("floor: bad value {value:?} for {arg}; {USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut addr = None;
    let mut proto = Proto::Resp;
    let mut value_size = 100;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            // `cargo bench` passes --bench to every bench target.
            "--bench" => continue,
            "--addr" | "--protocol" | "--value-size" => args.next(),
            _ => None,
        };
        let Some(value) = value else {
            eprintln!("floor: {USAGE}");
            return ExitCode::from(2);
        };
        match (arg.as_str(), value.as_str()) {
            ("--addr", _) => addr = Some(value),
            ("--protocol", "resp") => proto = Proto::Resp,
            ("--protocol", "memcache") => proto = Proto::Memcache,
            ("--value-size", v) => match v.parse() {
                Ok(n) => value_size = n,
                Err(_) => return bad(&arg, &value),
            },
            _ => return bad(&arg, &value),
        }
    }
    let Some(addr) = addr else {
        eprintln!("floor: {USAGE}");
        return ExitCode::from(2);
    };
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("floor: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match server::serve(listener, proto, value_size) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}
