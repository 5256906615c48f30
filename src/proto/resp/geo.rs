//! Geo commands on sorted sets, as redis-server 7.0's `geo.c`: GEOADD, GEOPOS, GEODIST,
//! GEOHASH, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and their `_RO` forms.
//!
//! Owns: the option grammar of these commands (checked in redis's order, with its error texts),
//! the nine-box scan over score ranges and the replies (`%.4f` distances, `%.17Lf`-human
//! coordinates, the 52-bit score as WITHHASH). Must not touch: the geohash arithmetic
//! (`geohash`), sorted-set internals (read through `types::read`, written through
//! `types::write` / `types::store`), framing.
//!
//! Invariants:
//! - A member's position is its score: GEOADD stores the 52-bit geohash as the score, as ZADD
//!   would (NX, XX, CH), and any sorted set can be searched (scores outside the geohash range
//!   decode to clamped coordinates, as in redis).
//! - The search scans the boxes in redis's order and the members of a box in score order, so
//!   unsorted replies and `COUNT n ANY` pick the same members as redis; sorting is stable.
//! - STORE / STOREDIST / GEOSEARCHSTORE: the source is read and the destination written as one
//!   step when both keys share a node (`types::with_keys`), each on its own otherwise; the
//!   destination may live on any node. An empty result deletes the destination.

use bytes::BytesMut;

use super::args::{check_size, parse_int};
use super::command::Command;
use super::conn::{Ctx, Reply};
use super::error::RespError;
use super::float::LongDouble;
use super::frame::{
    Args, Version, encode_array, encode_bulk, encode_double, encode_int, encode_null,
    encode_null_array,
};
use super::geohash::{self, Shape, ShapeKind};
use super::types::{parse_double, read, store, with_keys, write};
use crate::store::{Container, Entry, ZSet};

/// Runs a geo command (its arity is checked).
pub(super) fn handle(cmd: Command, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Reply {
    match cmd {
        Command::GeoAdd => geoadd(cx, a, out),
        Command::GeoPos => geopos(cx, a, out),
        Command::GeoHash => geohash_cmd(cx, a, out),
        Command::GeoDist => geodist(cx, a, out),
        Command::GeoRadius
        | Command::GeoRadiusRo
        | Command::GeoRadiusByMember
        | Command::GeoRadiusByMemberRo
        | Command::GeoSearch
        | Command::GeoSearchStore => search(cmd, cx, a, out),
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
}

fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// redis `extractLongLatOrReply`.
fn parse_lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), RespError> {
    let lon = parse_double(lon).ok_or_else(|| RespError::NotFloat)?;
    let lat = parse_double(lat).ok_or_else(|| RespError::NotFloat)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&lon)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat)
    {
        return Err(RespError::GeoInvalidPair(format!("{lon:.6},{lat:.6}")));
    }
    Ok((lon, lat))
}

/// redis `extractUnitOrReply`: meters per unit.
fn parse_unit(u: &[u8]) -> Result<f64, RespError> {
    match () {
        _ if is(u, "m") => Ok(1.0),
        _ if is(u, "km") => Ok(1000.0),
        _ if is(u, "ft") => Ok(0.3048),
        _ if is(u, "mi") => Ok(1609.34),
        _ => Err(RespError::GeoUnit),
    }
}

/// redis `extractDistanceOrReply`: (radius, meters per unit).
fn parse_distance(r: &[u8], unit: &[u8]) -> Result<(f64, f64), RespError> {
    let d = parse_double(r).ok_or_else(|| RespError::GeoNeedNumeric("radius"))?;
    if d < 0.0 {
        return Err(RespError::GeoRadiusNegative);
    }
    Ok((d, parse_unit(unit)?))
}

/// redis `addReplyDoubleDistance`: `%.4f`, a bulk string in RESP2 and RESP3 alike.
fn reply_distance(out: &mut BytesMut, d: f64) {
    encode_bulk(out, format!("{d:.4}").as_bytes());
}

/// redis `addReplyHumanLongDouble`.
fn reply_coord(out: &mut BytesMut, d: f64, v: Version) {
    encode_double(out, LongDouble::from_f64(d).format_human().as_bytes(), v);
}

fn geoadd(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut j = 2;
    while j < a.len() {
        let o = a.arg(j)?;
        if is(o, "nx") {
            nx = true;
        } else if is(o, "xx") {
            xx = true;
        } else if is(o, "ch") {
            ch = true;
        } else {
            break;
        }
        j += 1;
    }
    if (a.len() - j) % 3 != 0 || (xx && nx) {
        return Err(RespError::Syntax);
    }
    let mut items = Vec::with_capacity((a.len() - j) / 3);
    for i in (j..a.len()).step_by(3) {
        let (lon, lat) = parse_lon_lat(a.arg(i)?, a.arg(i + 1)?)?;
        let score = geohash::score_of(lon, lat).ok_or_else(|| RespError::NotFloat)? as f64;
        check_size(cx.limits, a.arg(i + 2)?.len())?;
        items.push((score, a.arg(i + 2)?));
    }
    // What ZADD, which redis hands the rewritten command to, says about no elements.
    if items.is_empty() {
        return Err(RespError::Syntax);
    }
    let key = a.arg(1)?;
    let r = cx.shared.topology.load().entry(key, |e| {
        // Nothing to change: the set is not written at all (no new CAS, no event), as redis
        // signals nothing when ZADD added and updated nothing.
        let changes = |z: &ZSet| {
            items.iter().any(|&(s, m)| match z.score(m) {
                None => !xx,
                Some(old) => !nx && old != s,
            })
        };
        if read::<ZSet, _>(e, changes)? == Some(false) {
            return Ok(Some((0, 0)));
        }
        write::<ZSet, _>(e, !xx, |z| {
            let (mut added, mut changed) = (0i64, 0i64);
            for &(s, m) in &items {
                match z.score(m) {
                    None if xx => {}
                    None => {
                        z.insert(m, s);
                        added += 1;
                    }
                    Some(_) if nx => {}
                    Some(old) => {
                        if old != s {
                            z.insert(m, s);
                            changed += 1;
                        }
                    }
                }
            }
            (added, changed)
        })
    })?;
    let (added, changed) = r.unwrap_or((0, 0));
    if added > 0 || changed > 0 {
        cx.shared.waiters.notify(key);
    }
    encode_int(out, if ch { added + changed } else { added });
    Ok(())
}

/// The scores of the members named from argument 2 on, in the sorted set at argument 1 (None
/// when the key does not exist).
fn member_scores(cx: &Ctx<'_>, a: &Args<'_>) -> Result<Option<Vec<Option<f64>>>, RespError> {
    cx.shared.topology.load().entry(a.arg(1)?, |e| {
        read::<ZSet, _>(e, |z| {
            a.iter_from(2).map(|m| z.score(m)).collect::<Vec<_>>()
        })
    })
}

fn geopos(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let v = cx.conn.version;
    let scores = member_scores(cx, a)?;
    encode_array(out, a.len() - 2);
    for i in 0..a.len() - 2 {
        match scores.as_ref().and_then(|s| s[i]) {
            None => encode_null_array(out, v),
            Some(s) => {
                let (lon, lat) = geohash::decode_score(s);
                encode_array(out, 2);
                reply_coord(out, lon, v);
                reply_coord(out, lat, v);
            }
        }
    }
    Ok(())
}

fn geohash_cmd(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let v = cx.conn.version;
    let scores = member_scores(cx, a)?;
    encode_array(out, a.len() - 2);
    for i in 0..a.len() - 2 {
        match scores.as_ref().and_then(|s| s[i]) {
            None => encode_null(out, v),
            Some(s) => encode_bulk(out, &geohash::geohash_string(s)),
        }
    }
    Ok(())
}

fn geodist(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let v = cx.conn.version;
    let to_meter = match a.len() {
        5 => parse_unit(a.arg(4)?)?,
        n if n > 5 => return Err(RespError::Syntax),
        _ => 1.0,
    };
    let (m1, m2) = (a.arg(2)?, a.arg(3)?);
    let scores = cx.shared.topology.load().entry(a.arg(1)?, |e| {
        read::<ZSet, _>(e, |z| (z.score(m1), z.score(m2)))
    })?;
    match scores {
        Some((Some(s1), Some(s2))) => {
            let (lon1, lat1) = geohash::decode_score(s1);
            let (lon2, lat2) = geohash::decode_score(s2);
            reply_distance(out, geohash::distance(lon1, lat1, lon2, lat2) / to_meter);
        }
        _ => encode_null(out, v),
    }
    Ok(())
}

/// Result order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A parsed search, up to the shape.
struct Query<'a> {
    shape: Shape,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    sort: Sort,
    any: bool,
    count: i64,
    /// The destination and whether it gets distances (STOREDIST) rather than scores.
    store: Option<(&'a [u8], bool)>,
}

/// A member found inside the shape.
struct Point {
    member: Vec<u8>,
    lon: f64,
    lat: f64,
    dist: f64,
    score: f64,
}

/// What the source key gave: absent, or the points found (sorted and cut to COUNT).
enum Found<'a> {
    Missing(Query<'a>),
    Points(Query<'a>, Vec<Point>),
}

/// The destination GEORADIUS[BYMEMBER] STORE/STOREDIST or GEOSEARCHSTORE names, found the way
/// the option parser consumes arguments (the parse itself checks everything).
pub(super) fn store_key<'a>(cmd: Command, a: &Args<'a>) -> Option<&'a [u8]> {
    let base = match cmd {
        Command::GeoSearchStore => return a.arg(1).ok(),
        Command::GeoRadius => 6,
        Command::GeoRadiusByMember => 5,
        _ => return None,
    };
    let mut found = None;
    let mut i = base;
    while i < a.len() {
        let o = a.arg(i).ok()?;
        if (is(o, "count") || is(o, "store") || is(o, "storedist")) && i + 1 < a.len() {
            if !is(o, "count") {
                found = Some(a.arg(i + 1).ok()?);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    found
}

/// redis `georadiusGeneric` up to the scan: parses `a` (the source, `z`, None if absent, for
/// FROMMEMBER / BYMEMBER) and collects the points.
fn find<'a>(cmd: Command, a: &Args<'a>, z: Option<&ZSet>) -> Result<Found<'a>, RespError> {
    use Command as C;
    let member_xy = |m: &[u8]| -> Result<(f64, f64), RespError> {
        match z.and_then(|z| z.score(m)) {
            Some(s) => Ok(geohash::decode_score(s)),
            None => Err(RespError::GeoMember),
        }
    };
    let geosearch = matches!(cmd, C::GeoSearch | C::GeoSearchStore);
    let nostore = matches!(cmd, C::GeoRadiusRo | C::GeoRadiusByMemberRo);
    let mut shape = Shape {
        lon: 0.0,
        lat: 0.0,
        conversion: 0.0,
        kind: ShapeKind::Radius(0.0),
    };
    let mut store: Option<(&'a [u8], bool)> = None;
    let base = match cmd {
        C::GeoRadius | C::GeoRadiusRo => {
            (shape.lon, shape.lat) = parse_lon_lat(a.arg(2)?, a.arg(3)?)?;
            let (r, conv) = parse_distance(a.arg(4)?, a.arg(5)?)?;
            shape.kind = ShapeKind::Radius(r);
            shape.conversion = conv;
            6
        }
        C::GeoRadiusByMember | C::GeoRadiusByMemberRo if z.is_none() => 5,
        C::GeoRadiusByMember | C::GeoRadiusByMemberRo => {
            (shape.lon, shape.lat) = member_xy(a.arg(2)?)?;
            let (r, conv) = parse_distance(a.arg(3)?, a.arg(4)?)?;
            shape.kind = ShapeKind::Radius(r);
            shape.conversion = conv;
            5
        }
        C::GeoSearchStore => {
            store = Some((a.arg(1)?, false));
            3
        }
        _ => 2,
    };
    let (mut with_dist, mut with_hash, mut with_coord) = (false, false, false);
    let (mut from_member, mut from_loc, mut by_radius, mut by_box) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let remaining = a.len().saturating_sub(base);
    let arg = |i: usize| a.arg(base + i);
    let mut i = 0;
    while i < remaining {
        let o = arg(i)?;
        if is(o, "withdist") {
            with_dist = true;
        } else if is(o, "withhash") {
            with_hash = true;
        } else if is(o, "withcoord") {
            with_coord = true;
        } else if is(o, "any") {
            any = true;
        } else if is(o, "asc") {
            sort = Sort::Asc;
        } else if is(o, "desc") {
            sort = Sort::Desc;
        } else if is(o, "count") && i + 1 < remaining {
            count = parse_int(arg(i + 1)?)?;
            if count <= 0 {
                return Err(RespError::GeoCountNotPositive);
            }
            i += 1;
        } else if (is(o, "store") || is(o, "storedist"))
            && i + 1 < remaining
            && !nostore
            && !geosearch
        {
            store = Some((arg(i + 1)?, is(o, "storedist")));
            i += 1;
        } else if is(o, "storedist") && geosearch && cmd == C::GeoSearchStore {
            if let Some((_, dist)) = store.as_mut() {
                *dist = true;
            }
        } else if is(o, "frommember") && i + 1 < remaining && geosearch && !from_loc {
            if z.is_some() {
                (shape.lon, shape.lat) = member_xy(arg(i + 1)?)?;
            }
            from_member = true;
            i += 1;
        } else if is(o, "fromlonlat") && i + 2 < remaining && geosearch && !from_member {
            (shape.lon, shape.lat) = parse_lon_lat(arg(i + 1)?, arg(i + 2)?)?;
            from_loc = true;
            i += 2;
        } else if is(o, "byradius") && i + 2 < remaining && geosearch && !by_box {
            let (r, conv) = parse_distance(arg(i + 1)?, arg(i + 2)?)?;
            shape.kind = ShapeKind::Radius(r);
            shape.conversion = conv;
            by_radius = true;
            i += 2;
        } else if is(o, "bybox") && i + 3 < remaining && geosearch && !by_radius {
            let w = parse_double(arg(i + 1)?).ok_or_else(|| RespError::GeoNeedNumeric("width"))?;
            let h = parse_double(arg(i + 2)?).ok_or_else(|| RespError::GeoNeedNumeric("height"))?;
            if h < 0.0 || w < 0.0 {
                return Err(RespError::GeoBoxNegative);
            }
            shape.conversion = parse_unit(arg(i + 3)?)?;
            shape.kind = ShapeKind::Box(w, h);
            by_box = true;
            i += 3;
        } else {
            return Err(RespError::Syntax);
        }
        i += 1;
    }
    let name = || String::from_utf8_lossy(a.arg(0).unwrap_or_default()).into_owned();
    if store.is_some() && (with_dist || with_hash || with_coord) {
        return Err(RespError::GeoStoreWith(if cmd == C::GeoSearchStore {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        }));
    }
    if geosearch && !(from_member || from_loc) {
        return Err(RespError::GeoFrom(name()));
    }
    if geosearch && !(by_radius || by_box) {
        return Err(RespError::GeoBy(name()));
    }
    if any && count == 0 {
        return Err(RespError::GeoAnyNeedsCount);
    }
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let q = Query {
        shape,
        with_dist,
        with_hash,
        with_coord,
        sort,
        any,
        count,
        store,
    };
    let Some(z) = z else {
        return Ok(Found::Missing(q));
    };
    let mut points = scan(z, &q.shape, if q.any { q.count as usize } else { 0 });
    let returned = if q.count > 0 && (points.len() as u64) > q.count as u64 {
        q.count as usize
    } else {
        points.len()
    };
    if q.sort != Sort::None {
        // redis `sort_gp_asc` / `sort_gp_desc`.
        let asc = |x: &Point, y: &Point| {
            if x.dist > y.dist {
                1
            } else if x.dist == y.dist {
                0
            } else {
                -1
            }
        };
        let desc = |x: &Point, y: &Point| -asc(x, y);
        let cmp: &dyn Fn(&Point, &Point) -> i32 = if q.sort == Sort::Asc { &asc } else { &desc };
        if returned == points.len() {
            // glibc's qsort is a merge sort: stable, equal distances keep the scan order.
            points.sort_by(|x, y| cmp(x, y).cmp(&0));
        } else {
            pqsort(&mut points, cmp, 0, returned - 1);
        }
    }
    points.truncate(returned);
    Ok(Found::Points(q, points))
}

/// redis 7.0's `pqsort` (NetBSD's qsort, Bentley & McIlroy, sorting only what covers the
/// ranks `lrange..=rrange`; without the switch to insertion sort later versions added), step
/// for step, so that equal distances cut by COUNT pick redis's members. Never panics, whatever
/// `cmp` answers.
fn pqsort<T>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> i32, lrange: usize, rrange: usize) {
    pqsort_range(v, 0, v.len(), cmp, lrange, rrange);
}

fn pqsort_range<T>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: &dyn Fn(&T, &T) -> i32,
    lr: usize,
    rr: usize,
) {
    let c = |v: &[T], x: usize, y: usize| cmp(&v[x], &v[y]);
    let med3 = |v: &[T], a: usize, b: usize, d: usize| {
        if c(v, a, b) < 0 {
            if c(v, b, d) < 0 {
                b
            } else if c(v, a, d) < 0 {
                d
            } else {
                a
            }
        } else if c(v, b, d) > 0 {
            b
        } else if c(v, a, d) < 0 {
            a
        } else {
            d
        }
    };
    let insertion = |v: &mut [T], a: usize, n: usize| {
        for pm in a + 1..a + n {
            let mut pl = pm;
            while pl > a && c(v, pl - 1, pl) > 0 {
                v.swap(pl, pl - 1);
                pl -= 1;
            }
        }
    };
    let vecswap = |v: &mut [T], x: usize, y: usize, n: usize| {
        for i in 0..n {
            v.swap(x + i, y + i);
        }
    };
    // Whether the ranks `lr..=rr` touch the part `a..a + n`.
    let wanted = |a: usize, n: usize| !((lr < a && rr < a) || (lr >= a + n && rr >= a + n));
    loop {
        if n < 7 {
            insertion(v, a, n);
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d);
                pm = med3(v, pm - d, pm, pm + d);
                pn = med3(v, pn - 2 * d, pn - d, pn);
            }
            pm = med3(v, pl, pm, pn);
        }
        v.swap(a, pm);
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let r = c(v, pb, a);
                if r > 0 {
                    break;
                }
                if r == 0 {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let r = c(v, pc, a);
                if r < 0 {
                    break;
                }
                if r == 0 {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        vecswap(v, a, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let r = pb - pa;
        if r > 1 && wanted(a, r) {
            pqsort_range(v, a, r, cmp, lr, rr);
        }
        let r = pd - pc;
        if r > 1 {
            a = pn - r;
            n = r;
            if wanted(a, n) {
                continue;
            }
        }
        return;
    }
}

/// redis `membersOfAllNeighbors`: the members inside `shape`, box by box, up to `limit`
/// (0: all).
fn scan(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let boxes = geohash::search_boxes(shape);
    let mut points = Vec::new();
    let mut last: Option<usize> = None;
    for (i, b) in boxes.iter().enumerate() {
        if geohash::is_zero(*b) {
            continue;
        }
        // redis compares with the last box scanned, except when that was the center.
        if let Some(l) = last.filter(|&l| l != 0) {
            if boxes[l] == *b {
                continue;
            }
        }
        if !points.is_empty() && limit > 0 && points.len() >= limit {
            break;
        }
        let (min, max) = geohash::box_scores(*b);
        let lo = z.count_while(|s, _| s < min);
        let hi = z.count_while(|s, _| s < max).max(lo);
        for (m, s) in z.range(lo, hi, false) {
            let (lon, lat) = geohash::decode_score(s);
            if let Some(dist) = geohash::within(shape, lon, lat) {
                points.push(Point {
                    member: m.to_vec(),
                    lon,
                    lat,
                    dist,
                    score: s,
                });
            }
            if !points.is_empty() && limit > 0 && points.len() >= limit {
                break;
            }
        }
        last = Some(i);
    }
    points
}

/// Runs `f` on the source's sorted set (None if absent), WRONGTYPE for another kind.
fn on_source<R>(
    e: &mut Entry<'_>,
    f: impl FnOnce(Option<&ZSet>) -> Result<R, RespError>,
) -> Result<R, RespError> {
    let r = match e.item() {
        None => return f(None),
        Some(i) => match i.container() {
            Some(Container::ZSet(z)) => f(Some(z))?,
            _ => return Err(RespError::WrongType),
        },
    };
    e.mark_read();
    Ok(r)
}

fn search(cmd: Command, cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let v = cx.conn.version;
    let topo = cx.shared.topology.load();
    let src = a.arg(if cmd == Command::GeoSearchStore { 2 } else { 1 })?;
    let Some(dst) = store_key(cmd, a) else {
        let found = topo.entry(src, |e| on_source(e, |z| find(cmd, a, z)))?;
        return match found {
            Found::Missing(_) => {
                encode_array(out, 0);
                Ok(())
            }
            Found::Points(q, points) => {
                reply_points(out, &q, &points, v);
                Ok(())
            }
        };
    };
    let n = with_keys(&topo, &[src, dst], |acc| {
        let found = acc.entry(src, |e| on_source(e, |z| find(cmd, a, z)))?;
        let (q, points) = match found {
            Found::Missing(q) => (q, Vec::new()),
            Found::Points(q, points) => (q, points),
        };
        // The parse consumes arguments as `store_key` does: the same destination.
        let dist = match q.store {
            Some((k, dist)) if k == dst => dist,
            _ => return Err(RespError::Syntax),
        };
        let mut z = ZSet::default();
        for p in &points {
            z.insert(
                &p.member,
                if dist {
                    p.dist / q.shape.conversion
                } else {
                    p.score
                },
            );
        }
        let n = z.len();
        acc.entry(dst, |e| store(e, Container::ZSet(z)))?;
        Ok::<_, RespError>(n)
    })?;
    cx.shared.waiters.notify(dst);
    encode_int(out, n as i64);
    Ok(())
}

fn reply_points(out: &mut BytesMut, q: &Query<'_>, points: &[Point], v: Version) {
    let opts = usize::from(q.with_dist) + usize::from(q.with_hash) + usize::from(q.with_coord);
    encode_array(out, points.len());
    for p in points {
        if opts > 0 {
            encode_array(out, opts + 1);
        }
        encode_bulk(out, &p.member);
        if q.with_dist {
            reply_distance(out, p.dist / q.shape.conversion);
        }
        if q.with_hash {
            encode_int(out, p.score as i64);
        }
        if q.with_coord {
            encode_array(out, 2);
            reply_coord(out, p.lon, v);
            reply_coord(out, p.lat, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pqsort_sorts_the_ranks_asked_for_and_never_panics() {
        let mut x = 0x1234_5678u64;
        for n in 0..300usize {
            let mut v: Vec<i64> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 50) as i64
                })
                .collect();
            let mut want = v.clone();
            want.sort();
            let cut = n / 3;
            let cmp = |a: &i64, b: &i64| (a - b).signum() as i32;
            if n > 0 {
                pqsort(&mut v, &cmp, 0, cut);
                assert_eq!(&v[..=cut], &want[..=cut]);
            }
            // A comparator that is no order at all still ends.
            let chaos = |a: &i64, b: &i64| if (a ^ b) & 1 == 0 { -1 } else { 1 };
            pqsort(&mut v, &chaos, 0, n.saturating_sub(1));
        }
    }

    /// Ties redis 7.0's pqsort leaves in scan order, where later versions (and a plain stable
    /// sort) would not: the order redis-server 7.0 answers for this input.
    #[test]
    fn pqsort_is_redis_7_0s() {
        let vals = [0, 0, 0, 0, 1, 1, 1, 2, 1, 1, 1, 1, 3, 3];
        let mut v: Vec<(i32, usize)> = vals.iter().copied().zip(0..).collect();
        let cmp = |x: &(i32, usize), y: &(i32, usize)| (x.0 - y.0).signum();
        pqsort(&mut v, &cmp, 0, 6);
        let got: Vec<usize> = v[..7].iter().map(|p| p.1).collect();
        assert_eq!(got, [0, 1, 2, 3, 8, 9, 11]);
    }

    /// The order redis's pqsort.c leaves 60 points with five distinct distances in after
    /// sorting ranks 0..=6 (compiled from redis's source, same input).
    #[test]
    fn pqsort_matches_redis_on_ties() {
        let n = 60u64;
        let mut s = 0x1234567u64 * (n + 1);
        let mut v: Vec<(f64, usize)> = (0..n as usize)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s % 5) as f64, i)
            })
            .collect();
        let asc = |x: &(f64, usize), y: &(f64, usize)| {
            if x.0 > y.0 {
                1
            } else if x.0 == y.0 {
                0
            } else {
                -1
            }
        };
        pqsort(&mut v, &asc, 0, 6);
        let got: Vec<usize> = v.iter().map(|p| p.1).collect();
        let want = [
            34, 38, 16, 48, 2, 43, 5, 12, 22, 33, 46, 55, 21, 39, 42, 6, 30, 7, 59, 9, 58, 13, 52,
            51, 0, 8, 10, 11, 20, 26, 29, 32, 36, 41, 57, 35, 1, 37, 25, 24, 40, 3, 23, 19, 44, 45,
            18, 47, 17, 49, 50, 15, 14, 53, 54, 4, 31, 56, 28, 27,
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn units_are_redis_units() {
        assert_eq!(parse_unit(b"KM"), Ok(1000.0));
        assert_eq!(parse_unit(b"mi"), Ok(1609.34));
        assert_eq!(parse_unit(b"yd"), Err(RespError::GeoUnit));
    }

    #[test]
    fn scan_finds_points_of_any_set() {
        let mut z = ZSet::default();
        z.insert(b"palermo", 3_479_099_956_230_698.0);
        z.insert(b"catania", 3_479_447_370_796_909.0);
        z.insert(b"odd", -5.0);
        let shape = Shape {
            lon: 15.0,
            lat: 37.0,
            conversion: 1000.0,
            kind: ShapeKind::Radius(200.0),
        };
        let found: Vec<Vec<u8>> = scan(&z, &shape, 0).into_iter().map(|p| p.member).collect();
        assert_eq!(found.len(), 2);
    }
}
