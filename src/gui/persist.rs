//! Saves the GUI's state files off the UI thread. The UI hands over the bytes of a file; a
//! named thread writes them atomically (temp file, fsync, rename: `fsutil::write_atomic`), only
//! the latest version when several are waiting. Errors come back as messages for the log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::fsutil;

enum Message {
    Write(PathBuf, Vec<u8>),
    Flush(Sender<()>),
}

pub struct Persister {
    tx: Option<Sender<Message>>,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    /// `errors` receives one message per failed write; `notify` wakes the UI to show it.
    pub fn start(errors: Sender<String>, notify: impl Fn() + Send + 'static) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("gui-persist".into())
            .spawn(move || write_loop(&rx, &errors, &notify));
        match thread {
            Ok(thread) => Self {
                tx: Some(tx),
                thread: Some(thread),
            },
            Err(error) => {
                log::error!("could not start the thread that saves settings: {error}");
                Self {
                    tx: None,
                    thread: None,
                }
            }
        }
    }

    pub fn save(&self, path: PathBuf, bytes: Vec<u8>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Message::Write(path, bytes));
        }
    }

    /// Waits until everything handed over so far is on disk (for exit and tests).
    pub fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (done_tx, done_rx) = crossbeam_channel::bounded(1);
            if tx.send(Message::Flush(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
    }
}

impl Drop for Persister {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(rx: &Receiver<Message>, errors: &Sender<String>, notify: &dyn Fn()) {
    while let Ok(first) = rx.recv() {
        let mut pending: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
        let mut flushes = Vec::new();
        for message in std::iter::once(first).chain(rx.try_iter()) {
            match message {
                Message::Write(path, bytes) => {
                    pending.insert(path, bytes);
                }
                Message::Flush(done) => flushes.push(done),
            }
        }
        for (path, bytes) in pending {
            let result = match path.parent() {
                Some(dir) => std::fs::create_dir_all(dir),
                None => Ok(()),
            }
            .and_then(|()| fsutil::write_atomic(&path, &bytes));
            if let Err(error) = result {
                let _ = errors.send(format!(
                    "could not save the app's state ({error}); check that the folder is writable: {}",
                    path.display()
                ));
                notify();
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_latest_version_and_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("state.json");
        let (errors_tx, errors_rx) = crossbeam_channel::unbounded();
        let persister = Persister::start(errors_tx, || {});
        persister.save(path.clone(), b"1".to_vec());
        persister.save(path.clone(), b"2".to_vec());
        persister.flush();
        assert_eq!(std::fs::read(&path).unwrap(), b"2");
        assert!(errors_rx.try_recv().is_err());
    }

    #[test]
    fn reports_a_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let (errors_tx, errors_rx) = crossbeam_channel::unbounded();
        let persister = Persister::start(errors_tx, || {});
        persister.save(blocker.join("state.json"), b"1".to_vec());
        persister.flush();
        let message = errors_rx.try_recv().unwrap();
        assert!(message.ends_with("file/state.json"), "{message}");
    }
}
