//! A model of an object store that fails on demand, for the object-storage
//! backend's crash and error suites: an `object_store::memory::InMemory`
//! wrapped so that the `n`-th mutating call (put, delete, copy) fails,
//! loses its response after taking effect, takes effect twice (a retry after
//! a lost response), or kills the "process" before or after taking effect.
//! Objects are atomic, as on S3: a put is either fully there or not at all.

use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use parking_lot::Mutex;
use std::sync::Arc;

/// What happens at the chosen call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call fails and has no effect.
    Fail,
    /// The call and every later mutating call fail without effect (an
    /// outage; reads still work) until [`FaultyStore::revive`].
    Outage,
    /// The call takes effect, but the caller gets an error (a lost response).
    LoseResponse,
    /// The call takes effect twice (a client retry after a lost response);
    /// the caller gets the second attempt's answer.
    Repeat,
    /// The process dies before the call takes effect: it and every later
    /// call fail until [`FaultyStore::revive`].
    CrashBefore,
    /// The call takes effect, then the process dies.
    CrashAfter,
}

impl Fault {
    /// Every fault, for suites that try each at every call.
    pub const ALL: [Fault; 6] =
        [Fault::Fail, Fault::Outage, Fault::LoseResponse, Fault::Repeat, Fault::CrashBefore, Fault::CrashAfter];

    /// Whether the fault kills the process.
    pub fn crashes(self) -> bool {
        matches!(self, Fault::CrashBefore | Fault::CrashAfter)
    }
}

/// Called after a mutating call took effect, with the object's path.
pub type Hook = Arc<dyn Fn(&Path) + Send + Sync>;

#[derive(Default)]
struct State {
    ops: u64,
    fault: Option<(u64, Fault)>,
    dead: bool,
    outage: bool,
    hook: Option<Hook>,
}

/// The fault-injecting store. Clones share objects and fault state;
/// [`FaultyStore::view`] shares only the objects.
#[derive(Clone)]
pub struct FaultyStore {
    inner: Arc<InMemory>,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultyStore")
    }
}

impl std::fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultyStore")
    }
}

impl Default for FaultyStore {
    fn default() -> Self {
        FaultyStore::new()
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic { store: "FaultyStore", source: what.to_owned().into() }
}

/// Runs `f` on a throwaway runtime (the store is used from plain threads).
fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
}

impl FaultyStore {
    /// An empty store without faults.
    pub fn new() -> FaultyStore {
        FaultyStore { inner: Arc::new(InMemory::new()), state: Arc::default() }
    }

    /// The same objects, seen by another process: no faults, not dead.
    pub fn view(&self) -> FaultyStore {
        FaultyStore { inner: self.inner.clone(), state: Arc::default() }
    }

    /// A deep copy of the objects (attributes included), without faults.
    pub fn deep_copy(&self) -> FaultyStore {
        let copy = InMemory::new();
        block(async {
            let metas: Vec<ObjectMeta> = self.inner.list(None).map(|m| m.expect("list")).collect().await;
            for m in metas {
                let got = self.inner.get(&m.location).await.expect("get");
                let attributes = got.attributes.clone();
                let bytes = got.bytes().await.expect("bytes");
                let opts = PutOptions { attributes, ..Default::default() };
                copy.put_opts(&m.location, bytes.into(), opts).await.expect("put");
            }
        });
        FaultyStore { inner: Arc::new(copy), state: Arc::default() }
    }

    /// Makes the `n`-th mutating call from now on (0-based) suffer `fault`;
    /// `None` turns injection off.
    pub fn fault_at(&self, n: Option<(u64, Fault)>) {
        let mut s = self.state.lock();
        s.fault = n.map(|(n, f)| (s.ops + n, f));
    }

    /// Mutating calls made so far.
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// Whether a simulated crash happened and was not revived.
    pub fn is_dead(&self) -> bool {
        self.state.lock().dead
    }

    /// Calls work again (a new process).
    pub fn revive(&self) {
        let mut s = self.state.lock();
        s.dead = false;
        s.outage = false;
        s.fault = None;
    }

    /// Sets a function called after every mutating call takes effect.
    pub fn set_hook(&self, hook: Option<Hook>) {
        self.state.lock().hook = hook;
    }

    /// Object names (paths) in the store, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = block(self.inner.list(None).map(|m| m.expect("list").location.to_string()).collect());
        v.sort();
        v
    }

    /// Replaces an object's bytes (keeping its attributes): damage at rest.
    pub fn tamper(&self, path: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let p = Path::from(path);
        block(async {
            let got = self.inner.get(&p).await.expect("get");
            let attributes = got.attributes.clone();
            let mut bytes = got.bytes().await.expect("bytes").to_vec();
            f(&mut bytes);
            let opts = PutOptions { attributes, ..Default::default() };
            self.inner.put_opts(&p, bytes.into(), opts).await.expect("put");
        });
    }

    fn check_alive(&self) -> Result<()> {
        if self.state.lock().dead {
            return Err(injected("simulated crash: the process is dead"));
        }
        Ok(())
    }

    /// Counts a mutating call; returns the fault for it, if any.
    fn next_fault(&self) -> Result<Option<Fault>> {
        let mut s = self.state.lock();
        if s.dead {
            return Err(injected("simulated crash: the process is dead"));
        }
        let n = s.ops;
        s.ops += 1;
        let fault = match s.fault {
            Some((at, f)) if at == n => Some(f),
            _ => None,
        };
        if fault == Some(Fault::Outage) {
            s.outage = true;
        }
        Ok(if s.outage { Some(Fault::Fail) } else { fault })
    }

    /// Runs a mutating call `call` under the fault scheme.
    async fn mutate<T, F, Fut>(&self, path: &Path, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let fault = self.next_fault()?;
        let result = match fault {
            None => call().await,
            Some(Fault::Fail | Fault::Outage) => return Err(injected("injected failure")),
            Some(Fault::CrashBefore) => {
                self.state.lock().dead = true;
                return Err(injected("simulated crash before the call"));
            }
            Some(Fault::LoseResponse) => {
                let _ = call().await;
                Err(injected("injected: the response was lost"))
            }
            Some(Fault::Repeat) => {
                let _ = call().await;
                call().await
            }
            Some(Fault::CrashAfter) => {
                let _ = call().await;
                self.state.lock().dead = true;
                Err(injected("simulated crash after the call"))
            }
        };
        let hook = self.state.lock().hook.clone();
        if let Some(h) = hook {
            h(path);
        }
        result
    }
}

#[async_trait::async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.mutate(location, || self.inner.put_opts(location, payload.clone(), opts.clone())).await
    }

    async fn put_multipart_opts(
        &self,
        _location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(object_store::Error::NotImplemented {
            operation: "put_multipart".into(),
            implementer: "FaultyStore".into(),
        })
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.check_alive()?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let this = self.clone();
        locations
            .then(move |p| {
                let this = this.clone();
                async move {
                    let p = p?;
                    this.mutate(&p, || this.inner.delete(&p)).await?;
                    Ok(p)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if let Err(e) = self.check_alive() {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.check_alive()?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.mutate(to, || self.inner.copy_opts(from, to, options.clone())).await
    }
}
