//! rustls configuration layer (being written: see issue 4).
