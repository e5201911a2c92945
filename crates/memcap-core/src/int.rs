//! `Int`: an exact integer that stays in an inline `i128` while it fits and
//! moves to a heap big integer ([`IBig`]) only when it does not.
//!
//! The constructed networks mix a few huge registers (the Õ(√N)-bit block
//! integers) with many small ones (codes, bits, match flags). Keeping the
//! small ones native makes the exact verifier several times faster without
//! giving up exactness: every operation is checked and promotes on overflow.
//!
//! Invariant: a value that fits in `i128` is always stored as `Small`, so
//! derived equality and hashing are equality and hashing of the integer.

use dashu_int::IBig;

/// An exact integer (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Int {
    /// A value that fits in `i128`.
    Small(i128),
    /// A value outside the `i128` range (never one that fits; see the invariant).
    Big(IBig),
}

impl Int {
    /// Zero.
    pub const ZERO: Int = Int::Small(0);

    /// Canonical form of a big integer.
    pub fn from_ibig(v: IBig) -> Int {
        match i128::try_from(&v) {
            Ok(s) => Int::Small(s),
            Err(_) => Int::Big(v),
        }
    }

    /// The value as a big integer.
    pub fn to_ibig(&self) -> IBig {
        match self {
            Int::Small(s) => IBig::from(*s),
            Int::Big(b) => b.clone(),
        }
    }

    /// True when the value is zero.
    pub fn is_zero(&self) -> bool {
        matches!(self, Int::Small(0))
    }

    /// True when the value is below zero.
    pub fn is_negative(&self) -> bool {
        match self {
            Int::Small(s) => *s < 0,
            Int::Big(b) => b.sign() == dashu_int::Sign::Negative,
        }
    }

    /// self += o
    pub fn add_assign(&mut self, o: &Int) {
        match (&mut *self, o) {
            (Int::Small(a), Int::Small(b)) => match a.checked_add(*b) {
                Some(c) => *a = c,
                None => *self = Int::from_ibig(IBig::from(*a) + IBig::from(*b)),
            },
            (Int::Big(a), Int::Small(b)) => {
                *a += IBig::from(*b);
                self.normalize();
            }
            (Int::Big(a), Int::Big(b)) => {
                *a += b;
                self.normalize();
            }
            (Int::Small(a), Int::Big(b)) => *self = Int::from_ibig(b + IBig::from(*a)),
        }
    }

    /// self -= o
    pub fn sub_assign(&mut self, o: &Int) {
        match (&mut *self, o) {
            (Int::Small(a), Int::Small(b)) => match a.checked_sub(*b) {
                Some(c) => *a = c,
                None => *self = Int::from_ibig(IBig::from(*a) - IBig::from(*b)),
            },
            (Int::Big(a), Int::Small(b)) => {
                *a -= IBig::from(*b);
                self.normalize();
            }
            (Int::Big(a), Int::Big(b)) => {
                *a -= b;
                self.normalize();
            }
            (Int::Small(a), Int::Big(b)) => *self = Int::from_ibig(IBig::from(*a) - b),
        }
    }

    /// self · o
    pub fn mul(&self, o: &Int) -> Int {
        match (self, o) {
            (Int::Small(a), Int::Small(b)) => match a.checked_mul(*b) {
                Some(c) => Int::Small(c),
                None => Int::from_ibig(IBig::from(*a) * IBig::from(*b)),
            },
            (Int::Big(a), Int::Small(b)) | (Int::Small(b), Int::Big(a)) => Int::from_ibig(a * IBig::from(*b)),
            (Int::Big(a), Int::Big(b)) => Int::from_ibig(a * b),
        }
    }

    /// −self
    pub fn neg(&self) -> Int {
        let mut z = Int::ZERO;
        z.sub_assign(self);
        z
    }

    fn normalize(&mut self) {
        if let Int::Big(b) = self {
            if let Ok(s) = i128::try_from(&*b) {
                *self = Int::Small(s);
            }
        }
    }
}

impl Ord for Int {
    fn cmp(&self, o: &Int) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        // A Big value lies outside the i128 range (invariant), so its sign
        // orders it against any Small one.
        match (self, o) {
            (Int::Small(a), Int::Small(b)) => a.cmp(b),
            (Int::Big(a), Int::Big(b)) => a.cmp(b),
            (Int::Big(_), Int::Small(_)) => {
                if self.is_negative() {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (Int::Small(_), Int::Big(_)) => {
                if o.is_negative() {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
        }
    }
}

impl PartialOrd for Int {
    fn partial_cmp(&self, o: &Int) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl std::fmt::Display for Int {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Int::Small(s) => write!(f, "{s}"),
            Int::Big(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation (and the order) agrees with IBig across the i128 boundary.
    #[test]
    fn int_ops_agree_with_ibig_across_the_i128_boundary() {
        let edge = [i128::MAX, i128::MIN, i128::MAX - 1, i128::MIN + 1, 0, 1, -1, 1 << 100, -(1 << 100)];
        let mut vals: Vec<IBig> = edge.iter().map(|&v| IBig::from(v)).collect();
        vals.push(IBig::from(i128::MAX) * IBig::from(7) + IBig::from(3));
        vals.push(-(IBig::from(i128::MAX) * IBig::from(i128::MAX)));
        for a in &vals {
            for b in &vals {
                let (ia, ib) = (Int::from_ibig(a.clone()), Int::from_ibig(b.clone()));
                let mut s = ia.clone();
                s.add_assign(&ib);
                assert_eq!(s, Int::from_ibig(a + b), "{a} + {b}");
                let mut d = ia.clone();
                d.sub_assign(&ib);
                assert_eq!(d, Int::from_ibig(a - b), "{a} - {b}");
                assert_eq!(ia.mul(&ib), Int::from_ibig(a * b), "{a} * {b}");
                assert_eq!(ia.is_negative(), *a < IBig::ZERO);
                assert_eq!(ia.cmp(&ib), a.cmp(b), "cmp({a}, {b})");
                assert_eq!(ia.neg(), Int::from_ibig(-a), "-{a}");
            }
        }
    }
}
