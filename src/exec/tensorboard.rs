//! Execute: training curves as TensorBoard event files, written while a run goes, so that
//! `tensorboard --logdir` shows them live as TRL users expect. One directory per stage
//! instance, one scalar per metric, at the stage's steps.
//!
//! The format is TensorFlow's record file: each record is its length (u64 LE), the masked
//! CRC-32C of the length, the bytes, and their masked CRC-32C; each record is an `Event`
//! protocol buffer (wall_time = 1, step = 2, file_version = 3, summary = 5), a summary
//! holding `Value`s (tag = 1, simple_value = 2). Written by hand: a few bytes of protobuf
//! do not need a protobuf library.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::MetricPoint;

/// The CRC-32C (Castagnoli) table.
fn crc32c_table() -> &'static [u32; 256] {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (i, entry) in table.iter_mut().enumerate() {
            let mut crc = i as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
            *entry = crc;
        }
        table
    })
}

pub(super) fn crc32c(bytes: &[u8]) -> u32 {
    let table = crc32c_table();
    !bytes.iter().fold(!0u32, |crc, b| {
        table[((crc ^ u32::from(*b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-delimited field.
fn bytes_field(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(number << 3 | 2), out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// An `Event` with `wall_time`, and `step` and a scalar summary, or `file_version`.
fn event(wall_time: f64, step: Option<u64>, body: EventBody<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(0x09); // wall_time: field 1, fixed64
    out.extend_from_slice(&wall_time.to_le_bytes());
    if let Some(step) = step {
        out.push(0x10); // step: field 2, varint
        varint(step, &mut out);
    }
    match body {
        EventBody::FileVersion => bytes_field(3, b"brain.Event:2", &mut out),
        EventBody::Scalars(values) => {
            let mut summary = Vec::new();
            for (tag, value) in values {
                let mut item = Vec::new();
                bytes_field(1, tag.as_bytes(), &mut item);
                item.push(0x15); // simple_value: field 2, fixed32
                item.extend_from_slice(&(*value as f32).to_le_bytes());
                bytes_field(1, &item, &mut summary);
            }
            bytes_field(5, &summary, &mut out);
        }
    }
    out
}

enum EventBody<'a> {
    FileVersion,
    Scalars(&'a BTreeMap<String, f64>),
}

/// One record of a TFRecord file.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// An event file of one stage instance, appended to as its points arrive.
pub(super) struct EventFile {
    path: PathBuf,
    file: File,
    /// The last step written (points at or before it are not written again).
    last_step: Option<u64>,
}

impl EventFile {
    /// A new event file in `dir`.
    pub(super) fn create(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        let path = dir.join(format!(
            "events.out.tfevents.{}.{host}.r1flow",
            now() as u64
        ));
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.write_all(&record(&event(now(), None, EventBody::FileVersion)))?;
        file.flush()?;
        Ok(Self {
            path,
            file,
            last_step: None,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the points after the last step written.
    pub(super) fn append(&mut self, points: &[MetricPoint]) -> std::io::Result<()> {
        let mut wrote = false;
        for point in points {
            if self.last_step.is_some_and(|last| point.step <= last) {
                continue;
            }
            let finite: BTreeMap<String, f64> = point
                .values
                .iter()
                .filter(|(_, v)| v.is_finite())
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            self.file.write_all(&record(&event(
                now(),
                Some(point.step),
                EventBody::Scalars(&finite),
            )))?;
            self.last_step = Some(point.step);
            wrote = true;
        }
        if wrote {
            self.file.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    /// Reads the records back as TensorBoard does: lengths, both checksums, payloads.
    fn records(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len_bytes = &bytes[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
            let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4"));
            assert_eq!(len_crc, masked_crc(len_bytes));
            let data = &bytes[at + 12..at + 12 + len];
            let data_crc =
                u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().expect("4"));
            assert_eq!(data_crc, masked_crc(data));
            out.push(data.to_vec());
            at += 16 + len;
        }
        out
    }

    #[test]
    fn an_event_file_holds_a_version_then_one_event_per_new_step() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut file = EventFile::create(dir.path()).expect("create");
        let point = |step, reward| MetricPoint {
            step,
            values: BTreeMap::from([("reward".to_string(), reward), ("nan".into(), f64::NAN)]),
        };
        file.append(&[point(1, 0.5), point(2, 0.75)])
            .expect("append");
        file.append(&[point(1, 0.5), point(2, 0.75), point(3, 1.0)])
            .expect("append again");
        let bytes = std::fs::read(file.path()).expect("read");
        let events = records(&bytes);
        assert_eq!(events.len(), 4, "version + steps 1, 2, 3 once each");
        assert!(events[0].windows(13).any(|w| w == b"brain.Event:2"));
        // Step 3's event: step field 0x10 0x03, the tag, then 1.0f32.
        let last = &events[3];
        assert!(last.windows(2).any(|w| w == [0x10, 0x03]));
        assert!(last.windows(6).any(|w| w == b"reward"));
        assert!(last.windows(5).any(|w| w == [0x15, 0x00, 0x00, 0x80, 0x3f]));
        assert!(
            !last.windows(3).any(|w| w == b"nan"),
            "non-finite values are left out"
        );
    }
}
