//! `PropertyBox`: a packet's MQTT 5 property set, out of line and absent
//! when empty. Most packets carry no properties (every 3.1.1 packet, most
//! 5.0 PUBLISHes), yet the largest sets held inline made every [`Packet`]
//! 264 bytes, copied at each step from the decoder to its caller.
//!
//! [`Packet`]: super::Packet

use serde::{Serialize, Serializer};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// A property set that has a static empty value, which a [`PropertyBox`]
/// without an allocation reads as.
pub trait PropertySet: Default + PartialEq + 'static {
    /// The set with no property in it (equal to `Self::default()`).
    const EMPTY: &'static Self;
}

/// A property set `T` behind a pointer that is null while the set is empty.
///
/// It reads and writes as a `T`: `p.properties.topic_alias` reads through
/// `Deref` (an empty box reads as [`PropertySet::EMPTY`]), and the first
/// write through `DerefMut` allocates. Equality, `Debug` and `Serialize` are
/// those of the `T` it reads as, so an allocated but emptied box equals an
/// empty one. Build one from a `T` with `.into()`.
#[derive(Clone, Default)]
pub struct PropertyBox<T: PropertySet>(Option<Box<T>>);

impl<T: PropertySet> PropertyBox<T> {
    /// True when no property is set; without an allocation that is known
    /// without comparing the fields.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(|set| set == T::EMPTY)
    }

    /// The properties, out of the box.
    pub fn into_inner(self) -> T {
        self.0.map(|b| *b).unwrap_or_default()
    }
}

impl<T: PropertySet> From<T> for PropertyBox<T> {
    /// Boxes `set`, allocating only if it holds a property.
    fn from(set: T) -> Self {
        if set == *T::EMPTY {
            PropertyBox(None)
        } else {
            PropertyBox(Some(Box::new(set)))
        }
    }
}

impl<T: PropertySet> Deref for PropertyBox<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        self.0.as_deref().unwrap_or(T::EMPTY)
    }
}

impl<T: PropertySet> DerefMut for PropertyBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T: PropertySet> PartialEq for PropertyBox<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: PropertySet + Eq> Eq for PropertyBox<T> {}

impl<T: PropertySet> PartialEq<T> for PropertyBox<T> {
    fn eq(&self, other: &T) -> bool {
        **self == *other
    }
}

impl<T: PropertySet + fmt::Debug> fmt::Debug for PropertyBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: PropertySet + Serialize> Serialize for PropertyBox<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::super::PublishProperties;
    use super::*;

    #[test]
    fn empty_sets_do_not_allocate_and_compare_by_content() {
        let empty: PropertyBox<PublishProperties> = PublishProperties::default().into();
        assert!(empty.0.is_none());
        assert!(empty.is_empty());
        assert_eq!(empty.topic_alias, None);

        let mut written = PropertyBox::<PublishProperties>::default();
        assert!(written.0.is_none());
        // The first write through DerefMut allocates.
        written.deref_mut().topic_alias = Some(7);
        assert!(written.0.is_some());
        assert_ne!(written, empty);
        assert!(!written.is_empty());
        let set = PublishProperties {
            topic_alias: Some(7),
            ..Default::default()
        };
        assert_eq!(written, set);
        assert_eq!(written.clone().into_inner(), set);

        written.topic_alias = None;
        assert!(written.0.is_some() && written.is_empty());
        assert_eq!(written, empty);
        assert_eq!(format!("{written:?}"), format!("{:?}", empty));
    }
}
