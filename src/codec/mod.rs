//! MQTT 3.1.1 and 5.0 codec (being written: see issue 3).
