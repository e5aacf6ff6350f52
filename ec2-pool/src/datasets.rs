//! What the backup cycle does with the pool's datasets, each in a window of its own (`session::with_up`):
//! receive a stream, finish or drop a cut receive, send one back, list and destroy snapshots.

use crate::app::{check_dataset, opt_key, Ctx};
use crate::cli::{
    DestroySnapshotsArgs, OptKeys, ReceiveArgs, ResumeTokenArgs, SendArgs, SnapshotsArgs,
};
use crate::key::PoolKey;
use crate::remote::Input;
use crate::{script, session};
use zstream_common::{say, usage};

/// Runs `script` on the pool's instance, with the pool up (its key loaded when key files are given), and returns
/// what it printed: the one way every listing and destroy here reaches the pool.
fn run_on(
    ctx: &Ctx,
    (name, keys): (&str, &OptKeys),
    step: &str,
    script: &str,
) -> anyhow::Result<String> {
    let key = opt_key(name, keys)?;
    session::with_up(ctx, name, key.as_ref(), |host| {
        ctx.ssh.run(host, step, script, Input::Nothing)
    })
}

pub fn receive(ctx: &Ctx, a: ReceiveArgs) -> anyhow::Result<()> {
    check_dataset(&a.dataset)?;
    let key = PoolKey::load(&a.name, &a.keys.key_files)?;
    let target = format!("{}/{}", a.name, a.dataset);
    session::with_up(ctx, &a.name, Some(&key), |host| {
        ctx.ssh.run(
            host,
            &format!("receiving into {target}"),
            &script::receive(&target, a.force),
            Input::Stdin(a.progress.progress),
        )
    })
    .map(|_| ())
}

/// Prints the token of a cut receive into the dataset (one line, nothing when there is none), or with
/// `--discard` drops the partial state.
pub fn resume_token(ctx: &Ctx, a: ResumeTokenArgs) -> anyhow::Result<()> {
    check_dataset(&a.dataset)?;
    let target = format!("{}/{}", a.name, a.dataset);
    let (step, script) = if a.discard {
        (
            format!("dropping the partial receive into {target}"),
            script::discard_partial(&target),
        )
    } else {
        (
            format!("reading {target}'s resume token"),
            script::resume_token(&target),
        )
    };
    let out = run_on(ctx, (&a.name, &a.keys), &step, &script)?;
    if a.discard {
        say!("the partial receive into {target} was dropped");
        return Ok(());
    }
    let token = out.trim();
    if !token.is_empty() && token != "-" {
        zstream_common::pipe::print_line(token)?;
    }
    Ok(())
}

pub fn send(ctx: &Ctx, a: SendArgs) -> anyhow::Result<()> {
    let Some((dataset, snap)) = a.snapshot.split_once('@') else {
        return Err(usage(format!("'{}' is not DATASET@SNAP", a.snapshot)));
    };
    check_dataset(dataset)?;
    let key = PoolKey::load(&a.name, &a.keys.key_files)?;
    let full = format!("{}/{dataset}@{snap}", a.name);
    session::with_up(ctx, &a.name, Some(&key), |host| {
        ctx.ssh.run_to_stdout(
            host,
            &format!("sending {full}"),
            &script::send(&full, a.from.as_deref()),
            Input::Nothing,
        )
    })
}

pub fn snapshots(ctx: &Ctx, a: SnapshotsArgs) -> anyhow::Result<()> {
    check_dataset(&a.dataset)?;
    let ds = format!("{}/{}", a.name, a.dataset);
    let out = run_on(
        ctx,
        (&a.name, &a.keys),
        &format!("listing the snapshots of {ds}"),
        &script::snapshots(&ds),
    )?;
    let (names, props) = out.split_once("\n--\n").unwrap_or(("", ""));
    let mut prop = std::collections::HashMap::new();
    for l in props.lines() {
        let w: Vec<&str> = l.split('\t').collect();
        if let [name, p, v] = w[..] {
            prop.insert((name.to_string(), p.to_string()), v.to_string());
        }
    }
    // Received raw, the dataset is its own encryption root (the pool's datasets otherwise inherit the pool's).
    let raw = prop
        .get(&(ds.clone(), "encryptionroot".to_string()))
        .is_some_and(|root| *root == ds);
    for n in names.lines().filter(|l| !l.is_empty()) {
        let get = |p: &str| {
            prop.get(&(n.to_string(), p.to_string()))
                .cloned()
                .unwrap_or_default()
        };
        let snap = n.rsplit_once('@').map_or(n, |(_, s)| s);
        zstream_common::pipe::print_line(serde_json::json!({
            "snapshot": snap, "guid": get("guid"),
            "referenced": get("referenced").parse::<u64>().unwrap_or(0),
            "raw": raw,
        }))?;
    }
    Ok(())
}

/// Prints DATASET and the datasets below it in the pool, one a line (named below the pool, as `receive` took
/// them), parents first; nothing when the pool holds none.
pub fn tree(ctx: &Ctx, a: SnapshotsArgs) -> anyhow::Result<()> {
    check_dataset(&a.dataset)?;
    let ds = format!("{}/{}", a.name, a.dataset);
    let out = run_on(
        ctx,
        (&a.name, &a.keys),
        &format!("listing the datasets of {ds}"),
        &script::tree(&ds),
    )?;
    for name in out.lines() {
        if let Some(rel) = name.strip_prefix(&format!("{}/", a.name)) {
            zstream_common::pipe::print_line(rel)?;
        }
    }
    Ok(())
}

pub fn destroy_snapshots(ctx: &Ctx, a: DestroySnapshotsArgs) -> anyhow::Result<()> {
    check_dataset(&a.dataset)?;
    if let Some(b) = a
        .snapshots
        .iter()
        .find(|s| s.is_empty() || s.contains(['@', '/', '\'']))
    {
        return Err(usage(format!(
            "'{b}' is not a snapshot name (the part after @)"
        )));
    }
    let full: Vec<String> = a
        .snapshots
        .iter()
        .map(|s| format!("{}/{}@{s}", a.name, a.dataset))
        .collect();
    run_on(
        ctx,
        (&a.name, &a.keys),
        "destroying snapshots",
        &script::destroy_snapshots(&full),
    )?;
    say!("destroyed {}", full.join(", "));
    Ok(())
}
