//! `mqtls decode`: decodes MQTT packets from hex or raw bytes and prints
//! each as one JSON line; a malformed packet is printed as a JSON error
//! with its byte offset, the rule it breaks and the reason code to send.

use super::CliError;
use crate::codec::{CodecError, FrameDecoder, MAX_VARINT, Packet, Version};
use std::io::Read;
use std::path::PathBuf;

/// Options of `mqtls decode`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Packet bytes in hex; spaces, colons and a 0x prefix are ignored.
    /// Without it (and without --file) bytes are read from stdin.
    pub hex: Vec<String>,
    /// Read the bytes from this file ("-" for stdin) instead.
    #[arg(short, long, conflicts_with = "hex")]
    pub file: Option<PathBuf>,
    /// Treat file or stdin content as raw bytes, not hex. Without this flag
    /// content that is not hex text is taken as raw bytes anyway.
    #[arg(long)]
    pub raw: bool,
    /// Protocol version: 4 (MQTT 3.1.1) or 5. Without it the version comes
    /// from a leading CONNECT, or is 3.1.1 when the input does not start
    /// with one.
    #[arg(short = 'V', long = "protocol-version", value_parser = ["4", "5"])]
    pub version: Option<String>,
    /// Pretty-print the JSON.
    #[arg(long)]
    pub pretty: bool,
}

/// Decodes and prints; exit status 0 when every byte decoded to a valid
/// packet, 1 when a malformed packet was found.
pub fn run(args: Args) -> Result<i32, CliError> {
    let input = read_input(&args)?;
    let version = match args.version.as_deref() {
        Some("4") => Some(Version::V311),
        Some(_) => Some(Version::V5),
        // A CONNECT tells its version; anything else defaults to 3.1.1.
        None if input.first().is_some_and(|b| b >> 4 == 1) => None,
        None => {
            eprintln!("mqtls decode: no -V and no leading CONNECT: decoding as MQTT 3.1.1");
            Some(Version::V311)
        }
    };
    let mut decoder = FrameDecoder::new(version, MAX_VARINT as usize + 5);
    decoder.extend(&input);
    loop {
        match decoder.next_packet() {
            Ok(Some(p)) => print_json(&packet_json(&p, decoder.version()), args.pretty),
            Ok(None) => break,
            Err(e) => return Ok(report(&e, args.pretty)),
        }
    }
    match decoder.finish() {
        Ok(()) => Ok(0),
        Err(e) => Ok(report(&e, args.pretty)),
    }
}

fn packet_json(p: &Packet, version: Option<Version>) -> serde_json::Value {
    let mut v = serde_json::to_value(p).unwrap_or(serde_json::Value::Null);
    if let (Some(obj), Some(version)) = (v.as_object_mut(), version) {
        obj.insert("version".into(), version.to_string().into());
    }
    v
}

fn report(e: &CodecError, pretty: bool) -> i32 {
    let json = serde_json::json!({
        "error": {
            "kind": format!("{e:?}").split([' ', '{', '(']).next().unwrap_or_default(),
            "offset": e.offset(),
            "spec": e.spec(),
            "reason_code": format!("{:#04x}", e.reason_code().as_u8()),
            "reason": format!("{:?}", e.reason_code()),
            "message": e.to_string(),
        }
    });
    print_json(&json, pretty);
    eprintln!("mqtls decode: {e}");
    1
}

fn print_json(v: &serde_json::Value, pretty: bool) {
    let s = if pretty {
        serde_json::to_string_pretty(v)
    } else {
        serde_json::to_string(v)
    };
    println!("{}", s.unwrap_or_default());
}

fn read_input(args: &Args) -> Result<Vec<u8>, CliError> {
    if !args.hex.is_empty() {
        return parse_hex(&args.hex.join(" "));
    }
    let mut data = Vec::new();
    let what = match &args.file {
        Some(p) if p.as_os_str() != "-" => {
            data = std::fs::read(p).map_err(|source| CliError::Read {
                what: p.display().to_string(),
                source,
            })?;
            p.display().to_string()
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut data)
                .map_err(|source| CliError::Read {
                    what: "stdin".into(),
                    source,
                })?;
            "stdin".into()
        }
    };
    let looks_hex = data
        .iter()
        .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace() || matches!(b, b':' | b'x'));
    if args.raw || !looks_hex || data.is_empty() {
        return Ok(data);
    }
    let text = String::from_utf8_lossy(&data);
    parse_hex(&text)
        .map_err(|e| CliError::Usage(format!("{what}: {e} (pass --raw to read it as raw bytes)")))
}

fn parse_hex(text: &str) -> Result<Vec<u8>, CliError> {
    let digits: String = text
        .split_whitespace()
        .map(|w| w.trim_start_matches("0x"))
        .collect::<String>()
        .chars()
        .filter(|c| *c != ':')
        .collect();
    hex::decode(&digits).map_err(|e| {
        CliError::Usage(format!(
            "not valid hex ({e}); give bytes like \"82 0c 00 01\" or use --file with --raw"
        ))
    })
}
