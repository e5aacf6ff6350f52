//! The Glacier REST API routes of the vault endpoint: what each request does to the vaults, uploads, archives and
//! jobs, with the checks AWS makes (part alignment and sizes, every tree hash).

use super::{error, resp, Req, Resp};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

#[derive(Default)]
struct Upload {
    vault: String,
    description: String,
    part_size: u64,
    created: String,
    parts: BTreeMap<u64, Vec<u8>>,
}

struct Archive {
    vault: String,
    description: String,
    body: Vec<u8>,
    created: String,
}

struct JobState {
    vault: String,
    archive: Option<String>,
    tier: String,
    created: String,
    ready_at: Instant,
    /// An inventory's output is fixed when the job starts.
    inventory: Option<Vec<u8>>,
}

#[derive(Default)]
pub(crate) struct State {
    next: u64,
    vaults: Vec<String>,
    uploads: BTreeMap<String, Upload>,
    archives: BTreeMap<String, Archive>,
    jobs: BTreeMap<String, JobState>,
}

impl State {
    pub(crate) fn new(vaults: &[&str]) -> State {
        State {
            vaults: vaults.iter().map(|v| v.to_string()).collect(),
            ..State::default()
        }
    }

    /// Unfinished uploads held.
    pub(crate) fn uploads(&self) -> usize {
        self.uploads.len()
    }
}

/// Glacier's tree hash, written out separately from zstream-ship's so that one checks the other.
pub fn tree_hash(data: &[u8]) -> String {
    let mut level: Vec<[u8; 32]> = if data.is_empty() {
        vec![Sha256::digest(b"").into()]
    } else {
        data.chunks(1 << 20)
            .map(|c| Sha256::digest(c).into())
            .collect()
    };
    while level.len() > 1 {
        let mut up = Vec::new();
        for pair in level.chunks(2) {
            if pair.len() == 2 {
                let mut h = Sha256::new();
                h.update(pair[0]);
                h.update(pair[1]);
                up.push(h.finalize().into());
            } else {
                up.push(pair[0]);
            }
        }
        level = up;
    }
    hex::encode(level[0])
}

fn now() -> String {
    let t: time::OffsetDateTime = SystemTime::now().into();
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formatting a date")
}

pub(crate) fn handle(req: &Req, st: &mut State, job: Duration) -> Resp {
    let p: Vec<&str> = req.path.iter().map(String::as_str).collect();
    let (vault, rest) = match p.as_slice() {
        [_, "vaults", v, rest @ ..] => (v.to_string(), rest),
        _ => return error(404, "ResourceNotFoundException", "no such path"),
    };
    if !st.vaults.contains(&vault) {
        return error(404, "ResourceNotFoundException", "Vault not found");
    }
    st.next += 1;
    let fresh = format!("{:016x}{:08x}", st.next, std::process::id());
    let m = req.method.as_str();
    match (m, rest) {
        ("POST", ["multipart-uploads"]) => {
            let part_size: u64 = req
                .header("x-amz-part-size")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if !(part_size.is_power_of_two() && (1 << 20..=4 << 30).contains(&part_size)) {
                return error(
                    400,
                    "InvalidParameterValueException",
                    "part size must be 1 MiB x 2^n",
                );
            }
            st.uploads.insert(
                fresh.clone(),
                Upload {
                    vault: vault.clone(),
                    description: req
                        .header("x-amz-archive-description")
                        .unwrap_or_default()
                        .to_string(),
                    part_size,
                    created: now(),
                    parts: BTreeMap::new(),
                },
            );
            resp(
                201,
                &[
                    (
                        "Location",
                        format!("/-/vaults/{vault}/multipart-uploads/{fresh}"),
                    ),
                    ("x-amz-multipart-upload-id", fresh),
                ],
                Vec::new(),
            )
        }
        ("GET", ["multipart-uploads"]) => {
            let list: Vec<_> = st
                .uploads
                .iter()
                .filter(|(_, u)| u.vault == vault)
                .map(|(id, u)| {
                    serde_json::json!({"ArchiveDescription": u.description, "CreationDate": u.created,
                        "MultipartUploadId": id, "PartSizeInBytes": u.part_size, "VaultARN": vault})
                })
                .collect();
            resp(
                200,
                &[],
                serde_json::json!({"Marker": null, "UploadsList": list})
                    .to_string()
                    .into_bytes(),
            )
        }
        ("PUT", ["multipart-uploads", id]) => {
            let Some(u) = st.uploads.get_mut(*id) else {
                return error(404, "ResourceNotFoundException", "no such upload");
            };
            let range = req.header("content-range").unwrap_or_default();
            let Some((a, b)) = range
                .strip_prefix("bytes ")
                .and_then(|r| r.strip_suffix("/*"))
                .and_then(|r| r.split_once('-'))
                .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
            else {
                return error(400, "InvalidParameterValueException", "bad Content-Range");
            };
            if a % u.part_size != 0
                || b < a
                || b + 1 - a != req.body.len() as u64
                || req.body.len() as u64 > u.part_size
            {
                return error(
                    400,
                    "InvalidParameterValueException",
                    "part not aligned or not the part size",
                );
            }
            let sum = tree_hash(&req.body);
            if req.header("x-amz-sha256-tree-hash") != Some(sum.as_str()) {
                return error(
                    400,
                    "InvalidParameterValueException",
                    "the part's tree hash is wrong",
                );
            }
            u.parts.insert(a, req.body.clone());
            resp(204, &[("x-amz-sha256-tree-hash", sum)], Vec::new())
        }
        ("POST", ["multipart-uploads", id]) => {
            let Some(u) = st.uploads.get(*id) else {
                return error(404, "ResourceNotFoundException", "no such upload");
            };
            let mut body = Vec::new();
            for (at, data) in &u.parts {
                // Contiguous from 0: with every part aligned and at most the part size, all but the last are full.
                if *at != body.len() as u64 {
                    return error(
                        400,
                        "InvalidParameterValueException",
                        "parts missing or short",
                    );
                }
                body.extend_from_slice(data);
            }
            let size: u64 = req
                .header("x-amz-archive-size")
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX);
            let sum = tree_hash(&body);
            if size != body.len() as u64 {
                return error(
                    400,
                    "InvalidParameterValueException",
                    "archive size does not match the parts",
                );
            }
            if req.header("x-amz-sha256-tree-hash") != Some(sum.as_str()) {
                return error(
                    400,
                    "InvalidParameterValueException",
                    "the archive's tree hash is wrong",
                );
            }
            let u = st.uploads.remove(*id).expect("checked above");
            store(st, fresh, vault, u.description, body, sum)
        }
        ("DELETE", ["multipart-uploads", id]) => match st.uploads.remove(*id) {
            Some(_) => resp(204, &[], Vec::new()),
            None => error(404, "ResourceNotFoundException", "no such upload"),
        },
        ("POST", ["archives"]) => {
            let sum = tree_hash(&req.body);
            if req.header("x-amz-sha256-tree-hash") != Some(sum.as_str()) {
                return error(
                    400,
                    "InvalidParameterValueException",
                    "the archive's tree hash is wrong",
                );
            }
            let description = req.header("x-amz-archive-description").unwrap_or_default();
            store(
                st,
                fresh,
                vault,
                description.to_string(),
                req.body.clone(),
                sum,
            )
        }
        ("DELETE", ["archives", id]) => match st.archives.remove(*id) {
            Some(_) => resp(204, &[], Vec::new()),
            None => error(404, "ResourceNotFoundException", "Archive not found"),
        },
        ("POST", ["jobs"]) => {
            let p: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let archive = p["ArchiveId"].as_str().map(str::to_string);
            let inventory = match p["Type"].as_str() {
                Some("archive-retrieval") => {
                    if archive
                        .as_ref()
                        .is_none_or(|a| !st.archives.contains_key(a))
                    {
                        return error(404, "ResourceNotFoundException", "Archive not found");
                    }
                    None
                }
                Some("inventory-retrieval") => {
                    let list: Vec<_> = st
                        .archives
                        .iter()
                        .filter(|(_, a)| a.vault == vault)
                        .map(|(id, a)| {
                            serde_json::json!({"ArchiveId": id, "ArchiveDescription": a.description,
                                "CreationDate": a.created, "Size": a.body.len(), "SHA256TreeHash": tree_hash(&a.body)})
                        })
                        .collect();
                    Some(
                        serde_json::json!({"VaultARN": vault, "InventoryDate": now(), "ArchiveList": list})
                            .to_string()
                            .into_bytes(),
                    )
                }
                _ => return error(400, "InvalidParameterValueException", "unknown job type"),
            };
            st.jobs.insert(
                fresh.clone(),
                JobState {
                    vault: vault.clone(),
                    archive,
                    tier: p["Tier"].as_str().unwrap_or("Standard").to_string(),
                    created: now(),
                    ready_at: Instant::now() + job,
                    inventory,
                },
            );
            resp(
                202,
                &[
                    ("Location", format!("/-/vaults/{vault}/jobs/{fresh}")),
                    ("x-amz-job-id", fresh),
                ],
                Vec::new(),
            )
        }
        ("GET", ["jobs"]) => {
            let list: Vec<_> = st
                .jobs
                .iter()
                .filter(|(_, j)| j.vault == vault)
                .map(|(id, j)| describe(id, j, st))
                .collect();
            resp(
                200,
                &[],
                serde_json::json!({"JobList": list, "Marker": null})
                    .to_string()
                    .into_bytes(),
            )
        }
        ("GET", ["jobs", id]) => match st.jobs.get(*id) {
            Some(j) => resp(200, &[], describe(id, j, st).to_string().into_bytes()),
            None => error(404, "ResourceNotFoundException", "no such job"),
        },
        ("GET", ["jobs", id, "output"]) => {
            let Some(j) = st.jobs.get(*id) else {
                return error(404, "ResourceNotFoundException", "no such job");
            };
            if Instant::now() < j.ready_at {
                return error(
                    400,
                    "InvalidParameterValueException",
                    "the job is not finished",
                );
            }
            let body = match (&j.inventory, &j.archive) {
                (Some(inv), _) => inv.clone(),
                (None, Some(a)) => match st.archives.get(a) {
                    Some(a) => a.body.clone(),
                    None => return error(404, "ResourceNotFoundException", "Archive not found"),
                },
                _ => Vec::new(),
            };
            let from = req
                .header("range")
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|r| r.parse::<usize>().ok());
            match from {
                Some(f) if f <= body.len() => resp(
                    206,
                    &[(
                        "Content-Range",
                        format!("bytes {f}-{}/{}", body.len().max(1) - 1, body.len()),
                    )],
                    body[f..].to_vec(),
                ),
                Some(_) => error(416, "InvalidParameterValueException", "range past the end"),
                None => {
                    let sum = tree_hash(&body);
                    resp(200, &[("x-amz-sha256-tree-hash", sum)], body)
                }
            }
        }
        _ => error(
            400,
            "InvalidParameterValueException",
            "not served by the test vault",
        ),
    }
}

/// A new archive (from a single upload or a completed multipart one), and the answer that names it.
fn store(
    st: &mut State,
    id: String,
    vault: String,
    description: String,
    body: Vec<u8>,
    sum: String,
) -> Resp {
    let location = format!("/-/vaults/{vault}/archives/{id}");
    st.archives.insert(
        id.clone(),
        Archive {
            vault,
            description,
            body,
            created: now(),
        },
    );
    resp(
        201,
        &[
            ("Location", location),
            ("x-amz-archive-id", id),
            ("x-amz-sha256-tree-hash", sum),
        ],
        Vec::new(),
    )
}

fn describe(id: &str, j: &JobState, st: &State) -> serde_json::Value {
    let done = Instant::now() >= j.ready_at;
    let archive = j.archive.as_ref().and_then(|a| st.archives.get(a));
    serde_json::json!({
        "JobId": id,
        "Action": if j.inventory.is_some() { "InventoryRetrieval" } else { "ArchiveRetrieval" },
        "ArchiveId": j.archive,
        "ArchiveSizeInBytes": archive.map(|a| a.body.len()),
        "ArchiveSHA256TreeHash": archive.map(|a| tree_hash(&a.body)),
        "Completed": done,
        "StatusCode": if done { "Succeeded" } else { "InProgress" },
        "CreationDate": j.created,
        "Tier": j.tier,
        "VaultARN": j.vault,
    })
}
