//! Is a path on storage the compute nodes can see? What can be checked from the login node:
//! the type of the file system holding it (`/proc/self/mountinfo`). NFS, Lustre, GPFS, BeeGFS,
//! CephFS, CIFS… are shared; ext4, XFS, btrfs, tmpfs, overlay… are this machine's own disks.
//! What cannot be checked: that the nodes mount the share at the same path (the usual setup,
//! and what the chunk tasks need), and bind mounts or local disks synchronised by other means.

use std::path::{Path, PathBuf};

/// What the file system of a path says about sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sharing {
    /// A network or cluster file system (its type).
    Shared(String),
    /// A file system of this machine (its type).
    Local(String),
    /// Not known (no mount table, or a type not in either list).
    Unknown(String),
}

const SHARED_TYPES: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "lustre",
    "gpfs",
    "beegfs",
    "ceph",
    "fuse.ceph",
    "glusterfs",
    "fuse.glusterfs",
    "orangefs",
    "pvfs2",
    "panfs",
    "afs",
    "fuse.sshfs",
    "fuse.juicefs",
    "wekafs",
    "9p",
];

const LOCAL_TYPES: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "tmpfs", "ramfs", "overlay", "vfat", "exfat",
    "ntfs", "ntfs3", "f2fs", "jfs", "reiserfs", "devtmpfs", "squashfs",
];

/// How the file system holding `path` (or its nearest existing ancestor) is shared.
pub fn sharing_of(path: &Path) -> Sharing {
    let mut existing = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    while !existing.exists() {
        match existing.parent() {
            Some(parent) => existing = parent.to_path_buf(),
            None => break,
        }
    }
    let existing = existing.canonicalize().unwrap_or(existing);
    match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(table) => classify(fs_type_of(&table, &existing).as_deref().unwrap_or("")),
        Err(_) => Sharing::Unknown(String::new()),
    }
}

pub fn classify(fs_type: &str) -> Sharing {
    if SHARED_TYPES.contains(&fs_type) {
        Sharing::Shared(fs_type.to_owned())
    } else if LOCAL_TYPES.contains(&fs_type) {
        Sharing::Local(fs_type.to_owned())
    } else {
        Sharing::Unknown(fs_type.to_owned())
    }
}

/// The type of the mount with the longest mount point that holds `path`, from the text of
/// `/proc/self/mountinfo` (`id parent major:minor root mountpoint options … - type source …`).
pub fn fs_type_of(mountinfo: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(mount_point) = fields.get(4) else {
            continue;
        };
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let Some(fs_type) = fields.get(dash + 1) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape(mount_point));
        if path.starts_with(&mount_point) {
            let depth = mount_point.components().count();
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((depth, (*fs_type).to_owned()));
            }
        }
    }
    best.map(|(_, t)| t)
}

/// mountinfo writes space, tab, newline and backslash as `\040`, `\011`, `\012`, `\134`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if bytes[i] == b'\\'
            && let Some(digits) = octal
        {
            let code = digits.iter().fold(0u32, |n, d| n * 8 + u32::from(d - b'0'));
            out.push(code as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A path the chunk tasks must reach, and what it is for the messages.
pub struct NeededPath<'a> {
    pub what: &'a str,
    pub path: &'a Path,
    /// How to put it elsewhere (`--work-dir DIR on shared storage`).
    pub remedy: &'a str,
}

/// Refuses paths on this machine's own disks when the cluster has nodes other than this
/// machine; unknown file systems pass with a warning. `nodes`: the cluster's node names
/// (`None`: unknown), `this_host`: this machine's short host name.
pub fn check_shared(
    needed: &[NeededPath],
    nodes: Option<&[String]>,
    this_host: &str,
    sharing: impl Fn(&Path) -> Sharing,
) -> Result<Vec<String>, String> {
    if let Some(nodes) = nodes
        && !nodes.is_empty()
        && nodes.iter().all(|n| n == this_host)
    {
        // The cluster is this machine: its own disks are the nodes' disks.
        return Ok(Vec::new());
    }
    let mut warnings = Vec::new();
    for n in needed {
        match sharing(n.path) {
            Sharing::Shared(_) => {}
            Sharing::Local(fs_type) => {
                return Err(format!(
                    "the {} is on a disk of this machine ({fs_type}), which the cluster's compute nodes cannot see: {}; {}",
                    n.what,
                    n.path.display(),
                    n.remedy
                ));
            }
            Sharing::Unknown(fs_type) => warnings.push(format!(
                "cannot tell whether the compute nodes see the {} (file system {}): {}",
                n.what,
                if fs_type.is_empty() {
                    "unknown"
                } else {
                    &fs_type
                },
                n.path.display()
            )),
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /tmp rw,nosuid shared:9 - tmpfs tmpfs rw
41 22 0:50 / /shared rw,relatime shared:20 - nfs4 fs:/export rw,vers=4.2
42 41 0:51 / /shared/my\\040projects rw - lustre 10.0.0.1@tcp:/lfs rw
";

    #[test]
    fn the_deepest_mount_holding_a_path_gives_its_type() {
        let t = |p: &str| fs_type_of(MOUNTINFO, Path::new(p));
        assert_eq!(t("/home/me/video.mkv").as_deref(), Some("ext4"));
        assert_eq!(t("/tmp/x").as_deref(), Some("tmpfs"));
        assert_eq!(t("/shared/sessions").as_deref(), Some("nfs4"));
        assert_eq!(t("/shared/my projects/a.mkv").as_deref(), Some("lustre"));
        assert_eq!(t("/sharedx").as_deref(), Some("ext4"));
    }

    #[test]
    fn local_disks_are_refused_unless_the_cluster_is_this_machine() {
        let sharing = |p: &Path| {
            if p.starts_with("/shared") {
                classify("nfs4")
            } else if p.starts_with("/odd") {
                classify("fuse.mystery")
            } else {
                classify("ext4")
            }
        };
        let needed = |work: &'static str| {
            vec![
                NeededPath {
                    what: "session folder",
                    path: Path::new(work),
                    remedy: "use --work-dir with a folder on shared storage",
                },
                NeededPath {
                    what: "input",
                    path: Path::new("/shared/in.mkv"),
                    remedy: "",
                },
            ]
        };
        let nodes = vec!["n1".to_owned(), "n2".to_owned()];
        let error = check_shared(
            &needed("/home/me/.cache/reframe/sessions"),
            Some(&nodes),
            "login",
            sharing,
        )
        .unwrap_err();
        assert_eq!(
            error,
            "the session folder is on a disk of this machine (ext4), which the cluster's compute nodes cannot see: /home/me/.cache/reframe/sessions; use --work-dir with a folder on shared storage"
        );
        assert_eq!(
            check_shared(&needed("/shared/work"), Some(&nodes), "login", sharing),
            Ok(vec![])
        );
        let warnings =
            check_shared(&needed("/odd/work"), None, "login", sharing).expect("a warning only");
        assert_eq!(
            warnings,
            [
                "cannot tell whether the compute nodes see the session folder (file system fuse.mystery): /odd/work"
            ]
        );
        let this_machine = vec!["vm".to_owned()];
        assert_eq!(
            check_shared(&needed("/tmp/w"), Some(&this_machine), "vm", sharing),
            Ok(vec![])
        );
    }

    #[test]
    fn escaped_mount_points_are_read() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\04"), "/end\\04");
    }
}
