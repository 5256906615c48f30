//! The command table: request arguments → [`Command`] (readable name + wire name), redis-server
//! 7.0's arity, flags and key positions (what `COMMAND INFO` reports), the [`Group`] (COMMAND
//! DOCS `group`, and the module `handler` routes the command to), and the subcommands of the
//! container commands (CLIENT, COMMAND, CONFIG, OBJECT, MEMORY, PUBSUB).
//!
//! Owns: command identification and arity checks. Must not touch: option parsing or semantics
//! (the group modules), reply bytes (`frame`), error text (`error`).
//! Invariants: names match case-insensitively without allocating; the arity rule is redis's
//! (positive: exactly N arguments including the name; negative: at least -N).

use std::sync::OnceLock;

use hashbrown::HashMap;

use super::error::RespError;
use super::frame::Args;

macro_rules! commands {
    ($( $variant:ident => $wire:literal, $arity:literal, [$($flag:literal),*], $first:literal, $last:literal, $step:literal, $group:ident; )*) => {
        /// A RESP command this server implements.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Command {
            $(
                #[doc = concat!("`", $wire, "`")]
                $variant,
            )*
        }

        impl Command {
            /// Every command, in table order.
            pub const ALL: &'static [Command] = &[$(Command::$variant),*];

            /// The wire name (lowercase, as COMMAND INFO shows it).
            pub fn wire(self) -> &'static str {
                match self { $(Command::$variant => $wire),* }
            }

            /// redis arity: N = exactly N arguments, -N = at least N (the name counts).
            pub fn arity(self) -> i32 {
                match self { $(Command::$variant => $arity),* }
            }

            /// COMMAND INFO flags.
            pub fn flags(self) -> &'static [&'static str] {
                match self { $(Command::$variant => &[$($flag),*]),* }
            }

            /// COMMAND INFO first key, last key, step.
            pub fn key_positions(self) -> (i64, i64, i64) {
                match self { $(Command::$variant => ($first, $last, $step)),* }
            }

            /// The command's group: its COMMAND DOCS `group` and the module that runs it.
            pub fn group(self) -> Group {
                match self { $(Command::$variant => Group::$group),* }
            }
        }
    };
}

impl Command {
    /// redis's `may_replicate` flag, which COMMAND INFO does not show: a command flagged
    /// read-only that may still change the value it reads (PFCOUNT stores the cardinality it
    /// computed). A read-only script may not call it. (PUBLISH and SPUBLISH carry the flag in
    /// redis too; not applied here yet.)
    pub fn may_replicate(self) -> bool {
        matches!(self, Command::PfCount)
    }
}

/// A command group: redis's COMMAND DOCS `group`, and which module handles the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// PING, HELLO, AUTH, CLIENT, ... (`connection`)
    Connection,
    /// COMMAND, INFO, CONFIG, DBSIZE, FLUSH*, TIME (`server`)
    Server,
    /// DEL, EXPIRE, TTL, SCAN, RENAME, ... (redis's `generic`)
    Keyspace,
    /// GET, SET, INCR, ... (`string`)
    String,
    /// H* (`hash`)
    Hash,
    /// L*, B*POP, *MOVE (`list`)
    List,
    /// S* (`set`)
    Set,
    /// Z*, BZ* (`sorted-set`)
    SortedSet,
    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH (`transactions`)
    Transaction,
    /// SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO (`bitmap`)
    Bitmap,
    /// (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, (S)PUBLISH, PUBSUB (`pubsub`)
    PubSub,
    /// EVAL*, FCALL*, SCRIPT, FUNCTION (`scripting`)
    Scripting,
    /// PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST (`hyperloglog`)
    HyperLogLog,
    /// GEO* (`geo`)
    Geo,
    /// X* (`stream`)
    Stream,
}

impl Group {
    /// The group's name in COMMAND DOCS.
    pub fn wire(self) -> &'static str {
        match self {
            Group::Connection => "connection",
            Group::Server => "server",
            Group::Keyspace => "generic",
            Group::String => "string",
            Group::Hash => "hash",
            Group::List => "list",
            Group::Set => "set",
            Group::SortedSet => "sorted-set",
            Group::Transaction => "transactions",
            Group::Bitmap => "bitmap",
            Group::PubSub => "pubsub",
            Group::Scripting => "scripting",
            Group::HyperLogLog => "hyperloglog",
            Group::Geo => "geo",
            Group::Stream => "stream",
        }
    }
}

commands! {
    Ping => "ping", -1, ["fast"], 0, 0, 0, Connection;
    Echo => "echo", 2, ["loading", "stale", "fast"], 0, 0, 0, Connection;
    Hello => "hello", -1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, Connection;
    Auth => "auth", -2, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, Connection;
    Select => "select", 2, ["loading", "stale", "fast"], 0, 0, 0, Connection;
    Quit => "quit", -1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, Connection;
    Reset => "reset", 1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, Connection;
    Client => "client", -2, [], 0, 0, 0, Connection;
    CommandInfo => "command", -1, ["loading", "stale"], 0, 0, 0, Server;
    Info => "info", -1, ["loading", "stale"], 0, 0, 0, Server;
    DbSize => "dbsize", 1, ["readonly", "fast"], 0, 0, 0, Server;
    FlushDb => "flushdb", -1, ["write"], 0, 0, 0, Server;
    FlushAll => "flushall", -1, ["write"], 0, 0, 0, Server;
    Time => "time", 1, ["loading", "stale", "fast"], 0, 0, 0, Server;
    Config => "config", -2, [], 0, 0, 0, Server;
    Delete => "del", -2, ["write"], 1, -1, 1, Keyspace;
    Unlink => "unlink", -2, ["write", "fast"], 1, -1, 1, Keyspace;
    Exists => "exists", -2, ["readonly", "fast"], 1, -1, 1, Keyspace;
    Touch => "touch", -2, ["readonly", "fast"], 1, -1, 1, Keyspace;
    Expire => "expire", -3, ["write", "fast"], 1, 1, 1, Keyspace;
    PExpire => "pexpire", -3, ["write", "fast"], 1, 1, 1, Keyspace;
    ExpireAt => "expireat", -3, ["write", "fast"], 1, 1, 1, Keyspace;
    PExpireAt => "pexpireat", -3, ["write", "fast"], 1, 1, 1, Keyspace;
    Ttl => "ttl", 2, ["readonly", "fast"], 1, 1, 1, Keyspace;
    PTtl => "pttl", 2, ["readonly", "fast"], 1, 1, 1, Keyspace;
    ExpireTime => "expiretime", 2, ["readonly", "fast"], 1, 1, 1, Keyspace;
    PExpireTime => "pexpiretime", 2, ["readonly", "fast"], 1, 1, 1, Keyspace;
    Persist => "persist", 2, ["write", "fast"], 1, 1, 1, Keyspace;
    Type => "type", 2, ["readonly", "fast"], 1, 1, 1, Keyspace;
    Keys => "keys", 2, ["readonly"], 0, 0, 0, Keyspace;
    Scan => "scan", -2, ["readonly"], 0, 0, 0, Keyspace;
    RandomKey => "randomkey", 1, ["readonly"], 0, 0, 0, Keyspace;
    Rename => "rename", 3, ["write"], 1, 2, 1, Keyspace;
    RenameNx => "renamenx", 3, ["write", "fast"], 1, 2, 1, Keyspace;
    Copy => "copy", -3, ["write", "denyoom"], 1, 2, 1, Keyspace;
    Get => "get", 2, ["readonly", "fast"], 1, 1, 1, String;
    Set => "set", -3, ["write", "denyoom"], 1, 1, 1, String;
    SetNx => "setnx", 3, ["write", "denyoom", "fast"], 1, 1, 1, String;
    SetEx => "setex", 4, ["write", "denyoom"], 1, 1, 1, String;
    PSetEx => "psetex", 4, ["write", "denyoom"], 1, 1, 1, String;
    MultiGet => "mget", -2, ["readonly", "fast"], 1, -1, 1, String;
    MultiSet => "mset", -3, ["write", "denyoom"], 1, -1, 2, String;
    MultiSetNx => "msetnx", -3, ["write", "denyoom"], 1, -1, 2, String;
    GetSet => "getset", 3, ["write", "denyoom", "fast"], 1, 1, 1, String;
    GetDelete => "getdel", 2, ["write", "fast"], 1, 1, 1, String;
    GetEx => "getex", -2, ["write", "fast"], 1, 1, 1, String;
    Append => "append", 3, ["write", "denyoom", "fast"], 1, 1, 1, String;
    StrLen => "strlen", 2, ["readonly", "fast"], 1, 1, 1, String;
    Incr => "incr", 2, ["write", "denyoom", "fast"], 1, 1, 1, String;
    Decr => "decr", 2, ["write", "denyoom", "fast"], 1, 1, 1, String;
    IncrBy => "incrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, String;
    DecrBy => "decrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, String;
    IncrByFloat => "incrbyfloat", 3, ["write", "denyoom", "fast"], 1, 1, 1, String;
    GetRange => "getrange", 4, ["readonly"], 1, 1, 1, String;
    SetRange => "setrange", 4, ["write", "denyoom"], 1, 1, 1, String;
    Substr => "substr", 4, ["readonly"], 1, 1, 1, String;
    Lcs => "lcs", -3, ["readonly"], 1, 2, 1, String;
    HSet => "hset", -4, ["write", "denyoom", "fast"], 1, 1, 1, Hash;
    HSetNx => "hsetnx", 4, ["write", "denyoom", "fast"], 1, 1, 1, Hash;
    HMSet => "hmset", -4, ["write", "denyoom", "fast"], 1, 1, 1, Hash;
    HGet => "hget", 3, ["readonly", "fast"], 1, 1, 1, Hash;
    HMGet => "hmget", -3, ["readonly", "fast"], 1, 1, 1, Hash;
    HDel => "hdel", -3, ["write", "fast"], 1, 1, 1, Hash;
    HExists => "hexists", 3, ["readonly", "fast"], 1, 1, 1, Hash;
    HLen => "hlen", 2, ["readonly", "fast"], 1, 1, 1, Hash;
    HStrLen => "hstrlen", 3, ["readonly", "fast"], 1, 1, 1, Hash;
    HKeys => "hkeys", 2, ["readonly"], 1, 1, 1, Hash;
    HVals => "hvals", 2, ["readonly"], 1, 1, 1, Hash;
    HGetAll => "hgetall", 2, ["readonly"], 1, 1, 1, Hash;
    HIncrBy => "hincrby", 4, ["write", "denyoom", "fast"], 1, 1, 1, Hash;
    HIncrByFloat => "hincrbyfloat", 4, ["write", "denyoom", "fast"], 1, 1, 1, Hash;
    HRandField => "hrandfield", -2, ["readonly"], 1, 1, 1, Hash;
    HScan => "hscan", -3, ["readonly"], 1, 1, 1, Hash;
    LPush => "lpush", -3, ["write", "denyoom", "fast"], 1, 1, 1, List;
    RPush => "rpush", -3, ["write", "denyoom", "fast"], 1, 1, 1, List;
    LPushX => "lpushx", -3, ["write", "denyoom", "fast"], 1, 1, 1, List;
    RPushX => "rpushx", -3, ["write", "denyoom", "fast"], 1, 1, 1, List;
    LPop => "lpop", -2, ["write", "fast"], 1, 1, 1, List;
    RPop => "rpop", -2, ["write", "fast"], 1, 1, 1, List;
    LLen => "llen", 2, ["readonly", "fast"], 1, 1, 1, List;
    LRange => "lrange", 4, ["readonly"], 1, 1, 1, List;
    LIndex => "lindex", 3, ["readonly"], 1, 1, 1, List;
    LSet => "lset", 4, ["write", "denyoom"], 1, 1, 1, List;
    LRem => "lrem", 4, ["write"], 1, 1, 1, List;
    LTrim => "ltrim", 4, ["write"], 1, 1, 1, List;
    LInsert => "linsert", 5, ["write", "denyoom"], 1, 1, 1, List;
    LPos => "lpos", -3, ["readonly"], 1, 1, 1, List;
    LMove => "lmove", 5, ["write", "denyoom"], 1, 2, 1, List;
    RPopLPush => "rpoplpush", 3, ["write", "denyoom"], 1, 2, 1, List;
    LMPop => "lmpop", -4, ["write", "movablekeys"], 0, 0, 0, List;
    BLPop => "blpop", -3, ["write", "noscript", "blocking"], 1, -2, 1, List;
    BRPop => "brpop", -3, ["write", "noscript", "blocking"], 1, -2, 1, List;
    BLMove => "blmove", 6, ["write", "denyoom", "noscript", "blocking"], 1, 2, 1, List;
    BRPopLPush => "brpoplpush", 4, ["write", "denyoom", "noscript", "blocking"], 1, 2, 1, List;
    BLMPop => "blmpop", -5, ["write", "blocking", "movablekeys"], 0, 0, 0, List;
    SAdd => "sadd", -3, ["write", "denyoom", "fast"], 1, 1, 1, Set;
    SRem => "srem", -3, ["write", "fast"], 1, 1, 1, Set;
    SMembers => "smembers", 2, ["readonly"], 1, 1, 1, Set;
    SIsMember => "sismember", 3, ["readonly", "fast"], 1, 1, 1, Set;
    SMIsMember => "smismember", -3, ["readonly", "fast"], 1, 1, 1, Set;
    SCard => "scard", 2, ["readonly", "fast"], 1, 1, 1, Set;
    SPop => "spop", -2, ["write", "fast"], 1, 1, 1, Set;
    SRandMember => "srandmember", -2, ["readonly"], 1, 1, 1, Set;
    SMove => "smove", 4, ["write", "fast"], 1, 2, 1, Set;
    SInter => "sinter", -2, ["readonly"], 1, -1, 1, Set;
    SInterCard => "sintercard", -3, ["readonly", "movablekeys"], 0, 0, 0, Set;
    SUnion => "sunion", -2, ["readonly"], 1, -1, 1, Set;
    SDiff => "sdiff", -2, ["readonly"], 1, -1, 1, Set;
    SInterStore => "sinterstore", -3, ["write", "denyoom"], 1, -1, 1, Set;
    SUnionStore => "sunionstore", -3, ["write", "denyoom"], 1, -1, 1, Set;
    SDiffStore => "sdiffstore", -3, ["write", "denyoom"], 1, -1, 1, Set;
    SScan => "sscan", -3, ["readonly"], 1, 1, 1, Set;
    ZAdd => "zadd", -4, ["write", "denyoom", "fast"], 1, 1, 1, SortedSet;
    ZIncrBy => "zincrby", 4, ["write", "denyoom", "fast"], 1, 1, 1, SortedSet;
    ZRem => "zrem", -3, ["write", "fast"], 1, 1, 1, SortedSet;
    ZScore => "zscore", 3, ["readonly", "fast"], 1, 1, 1, SortedSet;
    ZMScore => "zmscore", -3, ["readonly", "fast"], 1, 1, 1, SortedSet;
    ZCard => "zcard", 2, ["readonly", "fast"], 1, 1, 1, SortedSet;
    ZCount => "zcount", 4, ["readonly", "fast"], 1, 1, 1, SortedSet;
    ZLexCount => "zlexcount", 4, ["readonly", "fast"], 1, 1, 1, SortedSet;
    ZRank => "zrank", -3, ["readonly", "fast"], 1, 1, 1, SortedSet;
    ZRevRank => "zrevrank", -3, ["readonly", "fast"], 1, 1, 1, SortedSet;
    ZRange => "zrange", -4, ["readonly"], 1, 1, 1, SortedSet;
    ZRangeStore => "zrangestore", -5, ["write", "denyoom"], 1, 2, 1, SortedSet;
    ZRangeByScore => "zrangebyscore", -4, ["readonly"], 1, 1, 1, SortedSet;
    ZRevRangeByScore => "zrevrangebyscore", -4, ["readonly"], 1, 1, 1, SortedSet;
    ZRangeByLex => "zrangebylex", -4, ["readonly"], 1, 1, 1, SortedSet;
    ZRevRangeByLex => "zrevrangebylex", -4, ["readonly"], 1, 1, 1, SortedSet;
    ZRevRange => "zrevrange", -4, ["readonly"], 1, 1, 1, SortedSet;
    ZPopMin => "zpopmin", -2, ["write", "fast"], 1, 1, 1, SortedSet;
    ZPopMax => "zpopmax", -2, ["write", "fast"], 1, 1, 1, SortedSet;
    ZMPop => "zmpop", -4, ["write", "movablekeys"], 0, 0, 0, SortedSet;
    BZPopMin => "bzpopmin", -3, ["write", "noscript", "blocking", "fast"], 1, -2, 1, SortedSet;
    BZPopMax => "bzpopmax", -3, ["write", "noscript", "blocking", "fast"], 1, -2, 1, SortedSet;
    BZMPop => "bzmpop", -5, ["write", "blocking", "movablekeys"], 0, 0, 0, SortedSet;
    ZRemRangeByRank => "zremrangebyrank", 4, ["write"], 1, 1, 1, SortedSet;
    ZRemRangeByScore => "zremrangebyscore", 4, ["write"], 1, 1, 1, SortedSet;
    ZRemRangeByLex => "zremrangebylex", 4, ["write"], 1, 1, 1, SortedSet;
    ZUnion => "zunion", -3, ["readonly", "movablekeys"], 0, 0, 0, SortedSet;
    ZInter => "zinter", -3, ["readonly", "movablekeys"], 0, 0, 0, SortedSet;
    ZDiff => "zdiff", -3, ["readonly", "movablekeys"], 0, 0, 0, SortedSet;
    ZUnionStore => "zunionstore", -4, ["write", "denyoom", "movablekeys"], 1, 1, 1, SortedSet;
    ZInterStore => "zinterstore", -4, ["write", "denyoom", "movablekeys"], 1, 1, 1, SortedSet;
    ZDiffStore => "zdiffstore", -4, ["write", "denyoom", "movablekeys"], 1, 1, 1, SortedSet;
    ZRandMember => "zrandmember", -2, ["readonly"], 1, 1, 1, SortedSet;
    ZInterCard => "zintercard", -3, ["readonly", "movablekeys"], 0, 0, 0, SortedSet;
    ZScan => "zscan", -3, ["readonly"], 1, 1, 1, SortedSet;
    Multi => "multi", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, Transaction;
    Exec => "exec", 1, ["noscript", "loading", "stale", "skip_slowlog"], 0, 0, 0, Transaction;
    Discard => "discard", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, Transaction;
    Watch => "watch", -2, ["noscript", "loading", "stale", "fast", "allow_busy"], 1, -1, 1, Transaction;
    Unwatch => "unwatch", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, Transaction;
    Save => "save", 1, ["admin", "noscript", "no_async_loading", "no_multi"], 0, 0, 0, Server;
    BgSave => "bgsave", -1, ["admin", "noscript", "no_async_loading"], 0, 0, 0, Server;
    LastSave => "lastsave", 1, ["loading", "stale", "fast"], 0, 0, 0, Server;
    Dump => "dump", 2, ["readonly"], 1, 1, 1, Keyspace;
    Restore => "restore", -4, ["write", "denyoom"], 1, 1, 1, Keyspace;
    SetBit => "setbit", 4, ["write", "denyoom"], 1, 1, 1, Bitmap;
    GetBit => "getbit", 3, ["readonly", "fast"], 1, 1, 1, Bitmap;
    BitCount => "bitcount", -2, ["readonly"], 1, 1, 1, Bitmap;
    BitPos => "bitpos", -3, ["readonly"], 1, 1, 1, Bitmap;
    BitOp => "bitop", -4, ["write", "denyoom"], 2, -1, 1, Bitmap;
    PfAdd => "pfadd", -2, ["write", "denyoom", "fast"], 1, 1, 1, HyperLogLog;
    PfCount => "pfcount", -2, ["readonly"], 1, -1, 1, HyperLogLog;
    PfMerge => "pfmerge", -2, ["write", "denyoom"], 1, -1, 1, HyperLogLog;
    PfDebug => "pfdebug", 3, ["write", "denyoom", "admin"], 2, 2, 1, HyperLogLog;
    PfSelfTest => "pfselftest", 1, ["admin"], 0, 0, 0, HyperLogLog;
    GeoAdd => "geoadd", -5, ["write", "denyoom"], 1, 1, 1, Geo;
    GeoDist => "geodist", -4, ["readonly"], 1, 1, 1, Geo;
    GeoHash => "geohash", -2, ["readonly"], 1, 1, 1, Geo;
    GeoPos => "geopos", -2, ["readonly"], 1, 1, 1, Geo;
    GeoRadius => "georadius", -6, ["write", "denyoom", "movablekeys"], 1, 1, 1, Geo;
    GeoRadiusRo => "georadius_ro", -6, ["readonly"], 1, 1, 1, Geo;
    GeoRadiusByMember => "georadiusbymember", -5, ["write", "denyoom", "movablekeys"], 1, 1, 1, Geo;
    GeoRadiusByMemberRo => "georadiusbymember_ro", -5, ["readonly"], 1, 1, 1, Geo;
    GeoSearch => "geosearch", -7, ["readonly"], 1, 1, 1, Geo;
    GeoSearchStore => "geosearchstore", -8, ["write", "denyoom"], 1, 2, 1, Geo;
    XAdd => "xadd", -5, ["write", "denyoom", "fast"], 1, 1, 1, Stream;
    XRange => "xrange", -4, ["readonly"], 1, 1, 1, Stream;
    XRevRange => "xrevrange", -4, ["readonly"], 1, 1, 1, Stream;
    XLen => "xlen", 2, ["readonly", "fast"], 1, 1, 1, Stream;
    XDel => "xdel", -3, ["write", "fast"], 1, 1, 1, Stream;
    XTrim => "xtrim", -4, ["write"], 1, 1, 1, Stream;
    XSetId => "xsetid", -3, ["write", "denyoom", "fast"], 1, 1, 1, Stream;
    XRead => "xread", -4, ["readonly", "blocking", "movablekeys"], 0, 0, 0, Stream;
    XReadGroup => "xreadgroup", -7, ["write", "blocking", "movablekeys"], 0, 0, 0, Stream;
    XGroup => "xgroup", -2, [], 0, 0, 0, Stream;
    XAck => "xack", -4, ["write", "fast"], 1, 1, 1, Stream;
    XPending => "xpending", -3, ["readonly"], 1, 1, 1, Stream;
    XClaim => "xclaim", -6, ["write", "fast"], 1, 1, 1, Stream;
    XAutoClaim => "xautoclaim", -6, ["write", "fast"], 1, 1, 1, Stream;
    XInfo => "xinfo", -2, [], 0, 0, 0, Stream;
    BitField => "bitfield", -2, ["write", "denyoom"], 1, 1, 1, Bitmap;
    BitFieldRo => "bitfield_ro", -2, ["readonly", "fast"], 1, 1, 1, Bitmap;
    Object => "object", -2, [], 0, 0, 0, Keyspace;
    Sort => "sort", -2, ["write", "denyoom", "movablekeys"], 1, 1, 1, Keyspace;
    SortRo => "sort_ro", -2, ["readonly", "movablekeys"], 1, 1, 1, Keyspace;
    Memory => "memory", -2, [], 0, 0, 0, Server;
    Subscribe => "subscribe", -2, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, PubSub;
    Unsubscribe => "unsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, PubSub;
    PSubscribe => "psubscribe", -2, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, PubSub;
    PUnsubscribe => "punsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, PubSub;
    SSubscribe => "ssubscribe", -2, ["pubsub", "noscript", "loading", "stale"], 1, -1, 1, PubSub;
    SUnsubscribe => "sunsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 1, -1, 1, PubSub;
    Publish => "publish", 3, ["pubsub", "loading", "stale", "fast"], 0, 0, 0, PubSub;
    SPublish => "spublish", 3, ["pubsub", "loading", "stale", "fast"], 1, 1, 1, PubSub;
    PubSub => "pubsub", -2, [], 0, 0, 0, PubSub;
    Eval => "eval", -3, ["noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, Scripting;
    EvalSha => "evalsha", -3, ["noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, Scripting;
    EvalRo => "eval_ro", -3, ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, Scripting;
    EvalShaRo => "evalsha_ro", -3, ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, Scripting;
    FCall => "fcall", -3, ["noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, Scripting;
    FCallRo => "fcall_ro", -3, ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, Scripting;
    Script => "script", -2, [], 0, 0, 0, Scripting;
    Function => "function", -2, [], 0, 0, 0, Scripting;
}

/// Subcommands of the container commands: (container, wire name, arity).
pub const SUBCOMMANDS: &[(Command, &str, i32)] = &[
    (Command::Client, "setname", 3),
    (Command::Client, "getname", 2),
    (Command::Client, "id", 2),
    (Command::Client, "info", 2),
    (Command::Client, "list", -2),
    (Command::Client, "setinfo", 4),
    (Command::Client, "no-evict", 3),
    (Command::Client, "no-touch", 3),
    (Command::Client, "reply", 3),
    (Command::Client, "help", 2),
    (Command::Client, "tracking", -3),
    (Command::Client, "caching", 3),
    (Command::Client, "getredir", 2),
    (Command::Client, "trackinginfo", 2),
    (Command::CommandInfo, "count", 2),
    (Command::CommandInfo, "info", -2),
    (Command::CommandInfo, "docs", -2),
    (Command::CommandInfo, "list", -2),
    (Command::CommandInfo, "help", 2),
    (Command::Config, "get", -3),
    (Command::Config, "set", -4),
    (Command::Config, "resetstat", 2),
    (Command::Config, "rewrite", 2),
    (Command::Config, "help", 2),
    (Command::Object, "encoding", 3),
    (Command::Object, "freq", 3),
    (Command::Object, "idletime", 3),
    (Command::Object, "refcount", 3),
    (Command::Object, "help", 2),
    (Command::Memory, "doctor", 2),
    (Command::Memory, "malloc-stats", 2),
    (Command::Memory, "purge", 2),
    (Command::Memory, "stats", 2),
    (Command::Memory, "usage", -3),
    (Command::Memory, "help", 2),
    (Command::PubSub, "channels", -2),
    (Command::PubSub, "numpat", 2),
    (Command::PubSub, "numsub", -2),
    (Command::PubSub, "shardnumsub", -2),
    (Command::PubSub, "shardchannels", -2),
    (Command::PubSub, "help", 2),
    (Command::Script, "load", 3),
    (Command::Script, "exists", -3),
    (Command::Script, "flush", -2),
    (Command::Script, "kill", 2),
    (Command::Script, "help", 2),
    (Command::Function, "load", -3),
    (Command::Function, "delete", 3),
    (Command::Function, "list", -2),
    (Command::Function, "flush", -2),
    (Command::Function, "dump", 2),
    (Command::Function, "restore", -3),
    (Command::Function, "stats", 2),
    (Command::Function, "kill", 2),
    (Command::Function, "help", 2),
    (Command::XGroup, "create", -5),
    (Command::XGroup, "setid", -5),
    (Command::XGroup, "destroy", 4),
    (Command::XGroup, "createconsumer", 5),
    (Command::XGroup, "delconsumer", 5),
    (Command::XGroup, "help", 2),
    (Command::XInfo, "stream", -3),
    (Command::XInfo, "groups", 3),
    (Command::XInfo, "consumers", 4),
    (Command::XInfo, "help", 2),
];

/// Lowercases `name` into `buf` if it fits (command names are short); None otherwise.
fn lower<'b>(name: &[u8], buf: &'b mut [u8; 32]) -> Option<&'b [u8]> {
    let dst = buf.get_mut(..name.len())?;
    for (d, s) in dst.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    Some(dst)
}

impl Command {
    /// The command named `name` (any case).
    pub fn lookup(name: &[u8]) -> Option<Command> {
        static BY_NAME: OnceLock<HashMap<&'static [u8], Command>> = OnceLock::new();
        let mut buf = [0u8; 32];
        let name = lower(name, &mut buf)?;
        let by_name = BY_NAME.get_or_init(|| {
            Command::ALL
                .iter()
                .map(|&c| (c.wire().as_bytes(), c))
                .collect()
        });
        by_name.get(name).copied()
    }

    /// True for commands that take a subcommand (CLIENT, COMMAND, CONFIG, OBJECT, MEMORY).
    pub fn is_container(self) -> bool {
        matches!(
            self,
            Command::Client
                | Command::CommandInfo
                | Command::Config
                | Command::Object
                | Command::Memory
                | Command::PubSub
                | Command::Script
                | Command::Function
                | Command::XGroup
                | Command::XInfo
        )
    }

    /// The subcommand's wire name and arity for `name` under this container.
    pub fn subcommand(self, name: &[u8]) -> Option<(&'static str, i32)> {
        let mut buf = [0u8; 32];
        let name = lower(name, &mut buf)?;
        SUBCOMMANDS
            .iter()
            .find(|(c, w, _)| *c == self && w.as_bytes() == name)
            .map(|&(_, w, a)| (w, a))
    }
}

/// True if `n` arguments satisfy `arity`.
fn arity_ok(arity: i32, n: usize) -> bool {
    if arity >= 0 {
        n == arity as usize
    } else {
        n >= arity.unsigned_abs() as usize
    }
}

/// Identifies the command in `args` (non-empty) and checks its arity (and its subcommand's),
/// with redis-server's errors. Returns the command and, for containers, the subcommand name.
pub fn parse(args: &Args<'_>) -> Result<(Command, Option<&'static str>), RespError> {
    let name = args.arg(0)?;
    let Some(cmd) = Command::lookup(name) else {
        return Err(unknown_command(args));
    };
    if cmd.is_container() && args.len() >= 2 {
        let sub = args.arg(1)?;
        let Some((wire, arity)) = cmd.subcommand(sub) else {
            return Err(RespError::UnknownSubcommand(
                c_str(sub, 128),
                container_upper(cmd),
            ));
        };
        if !arity_ok(arity, args.len()) {
            return Err(RespError::WrongSubcommandArity(cmd.wire(), wire));
        }
        return Ok((cmd, Some(wire)));
    }
    if !arity_ok(cmd.arity(), args.len()) {
        return Err(RespError::WrongArity(cmd.wire()));
    }
    Ok((cmd, None))
}

fn container_upper(cmd: Command) -> &'static str {
    match cmd {
        Command::Client => "CLIENT",
        Command::CommandInfo => "COMMAND",
        Command::Object => "OBJECT",
        Command::Memory => "MEMORY",
        Command::PubSub => "PUBSUB",
        Command::Script => "SCRIPT",
        Command::Function => "FUNCTION",
        Command::XGroup => "XGROUP",
        Command::XInfo => "XINFO",
        _ => "CONFIG",
    }
}

/// A C string view as redis formats it with `%.Ns`: cut at the first NUL and at `max` bytes.
fn c_str(s: &[u8], max: usize) -> String {
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len()).min(max);
    String::from_utf8_lossy(&s[..end]).into_owned()
}

/// redis 7.0's unknown-command error: the name (up to 128 bytes) and the first arguments, each
/// quoted and followed by a space, while the list is under 128 bytes.
pub fn unknown_command(args: &Args<'_>) -> RespError {
    let mut list: Vec<u8> = Vec::new();
    for arg in args.iter_from(1) {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
        list.push(b'\'');
        list.extend_from_slice(&arg[..end.min(room)]);
        list.extend_from_slice(b"' ");
    }
    RespError::UnknownCommand {
        name: c_str(args.try_get(0).unwrap_or_default(), 128),
        args: String::from_utf8_lossy(&list).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(parts: &[&[u8]]) -> (Vec<u8>, Vec<(usize, usize)>) {
        let mut buf = Vec::new();
        let mut ranges = Vec::new();
        for p in parts {
            ranges.push((buf.len(), p.len()));
            buf.extend_from_slice(p);
        }
        (buf, ranges)
    }

    fn parse_of(parts: &[&[u8]]) -> Result<(Command, Option<&'static str>), String> {
        let (buf, ranges) = args_of(parts);
        parse(&Args::new(&buf, &ranges)).map_err(|e| e.to_string())
    }

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(Command::lookup(b"GeT"), Some(Command::Get));
        assert_eq!(Command::lookup(b"incrbyfloat"), Some(Command::IncrByFloat));
        assert_eq!(Command::lookup(b"nope"), None);
        assert_eq!(Command::lookup(&[b'a'; 40]), None);
        for c in Command::ALL {
            assert_eq!(
                Command::lookup(c.wire().to_uppercase().as_bytes()),
                Some(*c)
            );
        }
    }

    #[test]
    fn arity() {
        assert_eq!(parse_of(&[b"get", b"k"]), Ok((Command::Get, None)));
        assert_eq!(
            parse_of(&[b"GET"]),
            Err("ERR wrong number of arguments for 'get' command".into())
        );
        assert_eq!(
            parse_of(&[b"get", b"a", b"b"]),
            Err("ERR wrong number of arguments for 'get' command".into())
        );
        assert_eq!(
            parse_of(&[b"set", b"k"]),
            Err("ERR wrong number of arguments for 'set' command".into())
        );
        assert!(parse_of(&[b"set", b"k", b"v", b"EX", b"1"]).is_ok());
        assert_eq!(parse_of(&[b"ping"]), Ok((Command::Ping, None)));
        assert_eq!(
            parse_of(&[b"client"]),
            Err("ERR wrong number of arguments for 'client' command".into())
        );
        assert_eq!(
            parse_of(&[b"CLIENT", b"SetName"]),
            Err("ERR wrong number of arguments for 'client|setname' command".into())
        );
        assert_eq!(
            parse_of(&[b"client", b"getname"]),
            Ok((Command::Client, Some("getname")))
        );
        assert_eq!(
            parse_of(&[b"config", b"bogus"]),
            Err("ERR unknown subcommand 'bogus'. Try CONFIG HELP.".into())
        );
        assert_eq!(parse_of(&[b"command"]), Ok((Command::CommandInfo, None)));
    }

    #[test]
    fn unknown_command_text() {
        assert_eq!(
            parse_of(&[b"foo", b"a", b"b"]),
            Err("ERR unknown command 'foo', with args beginning with: 'a' 'b' ".into())
        );
        assert_eq!(
            parse_of(&[b"foo"]),
            Err("ERR unknown command 'foo', with args beginning with: ".into())
        );
        let long = [b'x'; 200];
        let got = parse_of(&[b"foo", &long, b"b"]).expect_err("unknown");
        assert_eq!(
            got,
            format!(
                "ERR unknown command 'foo', with args beginning with: '{}' ",
                "x".repeat(128)
            )
        );
    }
}
