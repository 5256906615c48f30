//! Geohash arithmetic as redis-server 7.0 does it (`geohash.c`, `geohash_helper.c`): the
//! 52-bit interleaved scores GEOADD stores, their decoding to coordinates, the nine boxes a
//! radius or box search scans, and the haversine distance.
//!
//! Owns: pure functions over doubles and bits, in redis's operation order so that results (and
//! the `%.4f` / `%.17Lf` texts made from them) are redis's to the last bit. Must not touch:
//! sorted sets, replies, argument parsing (`geo`).

use std::f64::consts::PI;

/// Latitude and longitude limits (EPSG:900913).
pub const LAT_MIN: f64 = -85.051_128_78;
/// See [`LAT_MIN`].
pub const LAT_MAX: f64 = 85.051_128_78;
/// See [`LAT_MIN`].
pub const LONG_MIN: f64 = -180.0;
/// See [`LAT_MIN`].
pub const LONG_MAX: f64 = 180.0;
/// Steps (bits per coordinate) of a stored score.
pub const STEP_MAX: u8 = 26;

const D_R: f64 = PI / 180.0;
const EARTH_RADIUS_IN_METERS: f64 = 6_372_797.560_856;
const MERCATOR_MAX: f64 = 20_037_726.37;

/// A geohash: `step` bits of each coordinate, interleaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bits {
    /// The interleaved bits.
    pub bits: u64,
    /// Bits per coordinate.
    pub step: u8,
}

impl Bits {
    const ZERO: Bits = Bits { bits: 0, step: 0 };

    fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

/// A coordinate range.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

/// The area a geohash covers.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    /// Longitude range.
    pub lon: Range,
    /// Latitude range.
    pub lat: Range,
}

const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let mut x = u64::from(xlo);
    let mut y = u64::from(ylo);
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
        0x0000_0000_FFFF_FFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let mut x = interleaved;
    let mut y = interleaved >> 1;
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// redis `geohashEncode` over the given ranges; None outside them (or `step` not in 1..=32).
pub fn encode(lon_r: Range, lat_r: Range, lon: f64, lat: f64, step: u8) -> Option<Bits> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_r.min || lat > lat_r.max || lon < lon_r.min || lon > lon_r.max {
        return None;
    }
    let mut lat_offset = (lat - lat_r.min) / (lat_r.max - lat_r.min);
    let mut long_offset = (lon - lon_r.min) / (lon_r.max - lon_r.min);
    lat_offset *= (1u64 << step) as f64;
    long_offset *= (1u64 << step) as f64;
    Some(Bits {
        bits: interleave64(lat_offset as u32, long_offset as u32),
        step,
    })
}

/// redis `geohashEncodeWGS84`.
pub fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Bits> {
    encode(LONG_RANGE, LAT_RANGE, lon, lat, step)
}

/// redis `geohashDecode` (WGS84 ranges); None for the zero hash.
pub fn decode(hash: Bits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = LAT_RANGE.max - LAT_RANGE.min;
    let long_scale = LONG_RANGE.max - LONG_RANGE.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << hash.step) as f64;
    // `ilato + 1` is 32-bit arithmetic in redis (it wraps for a corrupted score).
    let f = |i: u32| f64::from(i) * 1.0 / div;
    Some(Area {
        lat: Range {
            min: LAT_RANGE.min + f(ilato) * lat_scale,
            max: LAT_RANGE.min + f(ilato.wrapping_add(1)) * lat_scale,
        },
        lon: Range {
            min: LONG_RANGE.min + f(ilono) * long_scale,
            max: LONG_RANGE.min + f(ilono.wrapping_add(1)) * long_scale,
        },
    })
}

/// C's `(uint64_t)d` as x86-64 compilers do it (out of range: what `cvttsd2si` gives).
fn score_bits(d: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if d < TWO63 {
        if d >= -TWO63 {
            (d as i64) as u64
        } else {
            1 << 63
        }
    } else if d < 2.0 * TWO63 {
        d as u64
    } else {
        0
    }
}

/// redis `decodeGeohash`: the (longitude, latitude) a sorted-set score stands for.
pub fn decode_score(score: f64) -> (f64, f64) {
    let area = decode(Bits {
        bits: score_bits(score),
        step: STEP_MAX,
    })
    .expect("step 26 is never the zero hash");
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// redis `geohashAlign52Bits`.
pub fn align52(hash: Bits) -> u64 {
    hash.bits << (52 - u32::from(hash.step) * 2)
}

/// The score GEOADD stores for a valid (longitude, latitude).
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode_wgs84(lon, lat, STEP_MAX).map(align52)
}

/// GEOHASH's 11-character standard geohash of a score.
pub fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score);
    let bits = encode(
        LONG_RANGE,
        Range {
            min: -90.0,
            max: 90.0,
        },
        lon,
        lat,
        26,
    )
    .map_or(0, |b| b.bits);
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().enumerate().take(10) {
        *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    out
}

fn move_x(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> (64 - u32::from(hash.step) * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - u32::from(hash.step) * 2);
    hash.bits = x | y;
}

fn move_y(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - u32::from(hash.step) * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555_5555_5555_5555u64 >> (64 - u32::from(hash.step) * 2);
    hash.bits = x | y;
}

fn moved(hash: Bits, dx: i8, dy: i8) -> Bits {
    let mut h = hash;
    move_x(&mut h, dx);
    move_y(&mut h, dy);
    h
}

/// What a search covers: a circle of `radius`, or a `width` × `height` box, in units of
/// `conversion` meters, around (`lon`, `lat`).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Center longitude.
    pub lon: f64,
    /// Center latitude.
    pub lat: f64,
    /// Meters per unit.
    pub conversion: f64,
    /// The circle or the box.
    pub kind: ShapeKind,
}

/// See [`Shape`].
#[derive(Debug, Clone, Copy)]
pub enum ShapeKind {
    /// BYRADIUS / GEORADIUS.
    Radius(f64),
    /// BYBOX width height.
    Box(f64, f64),
}

/// redis `geohashEstimateStepsByRadius`.
fn estimate_steps(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// redis `geohashBoundingBox`: [min lon, min lat, max lon, max lat].
fn bounding_box(s: &Shape) -> [f64; 4] {
    let (height, width) = match s.kind {
        ShapeKind::Radius(r) => (s.conversion * r, s.conversion * r),
        ShapeKind::Box(w, h) => (s.conversion * (h / 2.0), s.conversion * (w / 2.0)),
    };
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(s.lat + lat_delta).cos());
    let long_delta_bottom =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(s.lat - lat_delta).cos());
    let south = s.lat < 0.0;
    [
        if south {
            s.lon - long_delta_bottom
        } else {
            s.lon - long_delta_top
        },
        s.lat - lat_delta,
        if south {
            s.lon + long_delta_bottom
        } else {
            s.lon + long_delta_top
        },
        s.lat + lat_delta,
    ]
}

/// redis `geohashCalculateAreasByShapeWGS84` then `membersOfAllNeighbors`' order: the center
/// box and its eight neighbors (north, south, east, west, NE, NW, SE, SW), the useless ones
/// zeroed.
pub fn search_boxes(s: &Shape) -> [Bits; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(s);
    let radius_meters = match s.kind {
        ShapeKind::Radius(r) => r,
        ShapeKind::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
    } * s.conversion;
    let mut steps = estimate_steps(radius_meters, s.lat);
    let around = |steps: u8| {
        let hash = encode_wgs84(s.lon, s.lat, steps).unwrap_or(Bits {
            bits: 0,
            step: steps,
        });
        let n = [
            moved(hash, 0, 1),
            moved(hash, 0, -1),
            moved(hash, 1, 0),
            moved(hash, -1, 0),
            moved(hash, 1, 1),
            moved(hash, -1, 1),
            moved(hash, 1, -1),
            moved(hash, -1, -1),
        ];
        (hash, n)
    };
    let (mut hash, mut n) = around(steps);
    let area_of = |h: Bits| decode(h);
    let mut decrease = false;
    if let (Some(north), Some(south), Some(east), Some(west)) =
        (area_of(n[0]), area_of(n[1]), area_of(n[2]), area_of(n[3]))
    {
        decrease = north.lat.max < max_lat
            || south.lat.min > min_lat
            || east.lon.max < max_lon
            || west.lon.min > min_lon;
    }
    if steps > 1 && decrease {
        steps -= 1;
        (hash, n) = around(steps);
    }
    if steps >= 2 {
        if let Some(area) = decode(hash) {
            // Indexes into `n`: 0 N, 1 S, 2 E, 3 W, 4 NE, 5 NW, 6 SE, 7 SW.
            if area.lat.min < min_lat {
                for i in [1, 7, 6] {
                    n[i] = Bits::ZERO;
                }
            }
            if area.lat.max > max_lat {
                for i in [0, 4, 5] {
                    n[i] = Bits::ZERO;
                }
            }
            if area.lon.min < min_lon {
                for i in [3, 7, 5] {
                    n[i] = Bits::ZERO;
                }
            }
            if area.lon.max > max_lon {
                for i in [2, 6, 4] {
                    n[i] = Bits::ZERO;
                }
            }
        }
    }
    [hash, n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]]
}

/// The score range `[min, max)` of the members inside box `hash` (redis `scoresOfGeoHashBox`).
pub fn box_scores(hash: Bits) -> (f64, f64) {
    let min = align52(hash);
    let max = align52(Bits {
        bits: hash.bits.wrapping_add(1),
        step: hash.step,
    });
    (min as f64, max as f64)
}

/// Whether `b` is the zero (skipped) box.
pub fn is_zero(b: Bits) -> bool {
    b.is_zero()
}

/// redis `geohashGetLatDistance`: the distance between two latitudes on one meridian.
fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// redis `geohashGetDistance`: haversine, in meters, with redis 7.0.8+'s shortcut when the
/// longitudes are the same (its result differs from the haversine's in the last bits, which
/// STOREDIST shows).
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// The distance from the shape's center to (`lon`, `lat`) in meters, if the point is inside
/// the shape (redis `geohashGetDistanceIfInRadiusWGS84` / `geohashGetDistanceIfInRectangle`).
pub fn within(s: &Shape, lon: f64, lat: f64) -> Option<f64> {
    match s.kind {
        ShapeKind::Radius(r) => {
            let d = distance(s.lon, s.lat, lon, lat);
            // Not `<=`: a NaN distance is kept, as redis keeps it.
            (d.partial_cmp(&(r * s.conversion)) != Some(std::cmp::Ordering::Greater)).then_some(d)
        }
        ShapeKind::Box(w, h) => {
            let (w, h) = (w * s.conversion, h * s.conversion);
            // Latitude first, as redis checks it (the cheaper leg).
            if lat_distance(lat, s.lat) > h / 2.0 {
                return None;
            }
            if distance(lon, lat, s.lon, lat) > w / 2.0 {
                return None;
            }
            Some(distance(s.lon, s.lat, lon, lat))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palermo_has_redis_score_and_position() {
        // GEOADD Sicily 13.361389 38.115556 Palermo; ZSCORE: 3479099956230698 in redis.
        assert_eq!(score_of(13.361389, 38.115556), Some(3_479_099_956_230_698));
        let (lon, lat) = decode_score(3_479_099_956_230_698.0);
        assert!((lon - 13.361389).abs() < 1e-5 && (lat - 38.115556).abs() < 1e-5);
        assert_eq!(&geohash_string(3_479_099_956_230_698.0), b"sqc8b49rny0");
    }

    #[test]
    fn interleave_round_trips() {
        for (a, b) in [
            (0u32, 0u32),
            (1, 2),
            (0x3ff_ffff, 0x155_5555),
            (u32::MAX, 7),
        ] {
            let d = deinterleave64(interleave64(a, b));
            assert_eq!((d as u32, (d >> 32) as u32), (a, b));
        }
    }

    #[test]
    fn any_score_decodes_without_panicking() {
        for s in [
            -1.0,
            -1e300,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            4.5e15,
            (1u64 << 52) as f64,
        ] {
            let (lon, lat) = decode_score(s);
            assert!((LONG_MIN..=LONG_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat));
            let _ = geohash_string(s);
        }
    }

    #[test]
    fn huge_and_zero_shapes_give_boxes() {
        for kind in [
            ShapeKind::Radius(0.0),
            ShapeKind::Radius(1e9),
            ShapeKind::Radius(f64::INFINITY),
            ShapeKind::Box(0.0, 0.0),
            ShapeKind::Box(1e7, 1.0),
        ] {
            let s = Shape {
                lon: 179.9,
                lat: 85.0,
                conversion: 1.0,
                kind,
            };
            let boxes = search_boxes(&s);
            assert!(!is_zero(boxes[0]) || boxes[0].step == 0);
        }
    }
}
