"""Named mutexes of a host, as the Windows kernel keeps them (what System.Threading.Mutex wraps).

Sources: Microsoft docs "Mutex Objects" (Win32), "Mutex Class", "AbandonedMutexException Class",
"Kernel Object Namespaces", "Object Names".

- A named mutex is one object per host and namespace: `Global\\name` is the global namespace,
  `Local\\name` and a bare name the session's ([I] winsim gives every WinRM command one session
  namespace per host). Names are case-sensitive ("Object Names").
- Ownership belongs to a thread; each powershell.exe runs its script on one thread, so winsim's
  owner is the powershell.exe run (a `Session`). The owner may wait again (a count).
- WaitOne(ms) blocks up to ms (-1: forever) and returns False on timeout.
- A session that ends while owning a mutex abandons it: the next waiter gets ownership and an
  AbandonedMutexException ("Mutex Class": "the next thread that acquires the mutex ... ").
- ReleaseMutex by a thread that does not own it throws ApplicationException.
- "The mutex object is destroyed when its last handle has been closed" ("Mutex Objects"): an
  abandoned mutex nobody holds a handle to is gone, and the next one made under that name is new.
"""
import threading
import time
import weakref
from typing import Dict, List, Optional, Tuple

from . import process
from .powershell.dotnet import DotNetException, Unsupported

_NAMESPACES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_NAMESPACES_LOCK = threading.Lock()


def namespace_for(host) -> "Namespace":
    """The mutex namespace of a host object (kept beside it, gone with it)."""
    with _NAMESPACES_LOCK:
        ns = _NAMESPACES.get(host)
        if ns is None:
            ns = _NAMESPACES[host] = Namespace()
        return ns


def forget(host) -> None:
    """A reboot: the kernel and every mutex in it are gone; the next command finds none."""
    with _NAMESPACES_LOCK:
        _NAMESPACES.pop(host, None)


def abandoned() -> DotNetException:
    return DotNetException("System.Threading.AbandonedMutexException",
                           "The wait completed due to an abandoned mutex.")


def not_owner() -> DotNetException:
    return DotNetException("System.ApplicationException",
                           "Object synchronization method was called from an unsynchronized block "
                           "of code.")


class _Kernel:
    """One kernel mutex object."""

    def __init__(self, key: Optional[Tuple[str, str]]):
        self.key = key
        self.owner: Optional["Session"] = None
        self.count = 0
        self.abandoned = False
        self.handles = 0


class Namespace:
    """Every named mutex of one host; one condition serves all waits (few objects, few waiters)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.objects: Dict[Tuple[str, str], _Kernel] = {}

    def session(self) -> "Session":
        return Session(self)

    def held(self) -> Dict[str, bool]:
        """name -> whether someone owns it now (for tests and status)."""
        with self.cond:
            return {"%s\\%s" % key: k.owner is not None for key, k in self.objects.items()}


def _key(name: str) -> Tuple[str, str]:
    scope, sep, rest = name.partition("\\")
    if sep and scope.lower() in ("global", "local"):
        name, scope = rest, scope.capitalize()
    else:
        scope = "Local"
    if "\\" in name:
        # [I] CreateMutex with another backslash names an object directory that does not exist.
        raise Unsupported("a mutex name with a backslash after its namespace prefix")
    return scope, name


class Session:
    """The handles and ownerships of one powershell.exe run."""

    def __init__(self, ns: Namespace):
        self.ns = ns
        self.handles: List["Handle"] = []
        self.owned: List[_Kernel] = []

    def open(self, initially_owned: bool, name: Optional[str]) -> "Handle":
        """new Mutex(initiallyOwned, name): opens the named object or makes it; initiallyOwned
        takes ownership only when this call made it ("Mutex(Boolean, String)")."""
        with self.ns.cond:
            key = _key(name) if name else None
            kernel = self.ns.objects.get(key) if key else None
            created = kernel is None
            if created:
                kernel = _Kernel(key)
                if key:
                    self.ns.objects[key] = kernel
            kernel.handles += 1
            if created and initially_owned:
                kernel.owner, kernel.count = self, 1
                self.owned.append(kernel)
            handle = Handle(self, kernel)
            self.handles.append(handle)
            return handle

    def end(self):
        """The process ends: its owned mutexes are abandoned, its handles closed."""
        with self.ns.cond:
            for kernel in self.owned:
                kernel.owner, kernel.count, kernel.abandoned = None, 0, True
                _forget_if_unused(self.ns, kernel)
            self.owned = []
            for handle in list(self.handles):
                handle._close_locked()
            self.ns.cond.notify_all()


class Handle:
    def __init__(self, session: Session, kernel: _Kernel):
        self.session, self.kernel = session, kernel
        self.closed = False

    def _check(self):
        if self.closed:
            raise DotNetException("System.ObjectDisposedException",
                                  "Safe handle has been closed")     # [I] the exact text

    def wait(self, timeout_ms: int) -> bool:
        cond, kernel = self.session.ns.cond, self.kernel
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000.0
        with cond:
            self._check()
            if kernel.owner is self.session:
                kernel.count += 1
                return True
            while kernel.owner is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                # A terminated command stops waiting (winsim/shell/process.py); it is woken by the
                # namespace's notify or, at the latest, a quarter of a second later.
                process.check()
                cond.wait(0.25 if left is None else min(left, 0.25))
            process.check()
            kernel.owner, kernel.count = self.session, 1
            self.session.owned.append(kernel)
            if kernel.abandoned:
                # The caller owns the mutex now and learns that the previous owner died with it.
                kernel.abandoned = False
                raise abandoned()
            return True

    def release(self):
        with self.session.ns.cond:
            self._check()
            if self.kernel.owner is not self.session:
                raise not_owner()
            self.kernel.count -= 1
            if self.kernel.count == 0:
                self.kernel.owner = None
                self.session.owned.remove(self.kernel)
                _forget_if_unused(self.session.ns, self.kernel)
                self.session.ns.cond.notify_all()

    def close(self):
        with self.session.ns.cond:
            self._close_locked()

    def _close_locked(self):
        if self.closed:
            return
        self.closed = True
        kernel = self.kernel
        kernel.handles -= 1
        if self in self.session.handles:
            self.session.handles.remove(self)
        _forget_if_unused(self.session.ns, kernel)


def _forget_if_unused(ns: Namespace, kernel: _Kernel):
    # [I] an owned mutex stays while its owner lives, even with no handle left.
    if kernel.handles == 0 and kernel.owner is None and kernel.key is not None:
        if ns.objects.get(kernel.key) is kernel:
            del ns.objects[kernel.key]
