"""A real Dovecot IMAP server for tests, in its own temp folder, on a free loopback port.

The config follows the project's engineering notes (measured on this machine): it reads
nothing from /etc/dovecot, logs to a file, keeps its unix sockets in a short ``base_dir`` (the
socket path limit is 108 bytes), and stores mail as uid/gid 65534 because Dovecot refuses mail
owned by root. Run as a normal user it runs "rootless": every process and the mail belong to
that user.

Typical use (the pytest fixtures in ``servers_plugin`` do this once per session)::

    server = DovecotServer()
    server.start()
    server.add_user("alice", "secret")
    uid = server.append("alice", "INBOX", raw_bytes)
    ...
    server.close()

With ``DovecotServer(tls=make_tls_files(folder))`` it also speaks TLS: STARTTLS on ``.port``
(plaintext logins stay allowed there, so ``plain`` clients keep working) and implicit TLS on
``.ssl_port`` (imaps). Without ``tls`` the config is the plaintext one, as fast as ever.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import datetime as dt
import getpass
import grp
import imaplib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

from tests.support.tls import TlsFiles

log = logging.getLogger(__name__)

# Dovecot refuses to store mail as root; 65534 (nobody/nogroup) is what the notes measured.
MAIL_UID = 65534
MAIL_GID = 65534
# Unix socket paths (sun_path) are limited to 108 bytes; Dovecot's longest socket name under
# base_dir is about 30 bytes ("login/imap-urlauth-worker"...), so keep base_dir well short.
_MAX_BASE_DIR = 60
_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0
_IMAP_TIMEOUT = 10.0

DOVECOT_ENV = "CASEDESK_DOVECOT"
DOVECOT_HINT = "apt-get install dovecot-imapd (Debian/Ubuntu); the binary is /usr/sbin/dovecot"


class DovecotError(RuntimeError):
    """Dovecot could not be started or did something a test helper did not expect."""


def find_dovecot() -> str | None:
    """Path of the dovecot binary, or None. /usr/sbin is often not on a user's PATH.

    ``CASEDESK_DOVECOT`` names another binary (e.g. a Homebrew one); if it names nothing
    executable, Dovecot counts as missing.
    """
    override = os.environ.get(DOVECOT_ENV, "").strip()
    if override:
        return override if os.access(override, os.X_OK) else None
    found = shutil.which("dovecot")
    if found:
        return found
    fallback = Path("/usr/sbin/dovecot")
    if fallback.is_file() and os.access(fallback, os.X_OK):
        return str(fallback)
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (start() retries if another process takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def imap_utf7_encode(name: str) -> str:
    """Encode a mailbox name in IMAP's modified UTF-7 (RFC 3501 5.1.3).

    imaplib sends str arguments as ASCII, so non-ASCII folder names must be encoded here.
    """
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            b64 = base64.b64encode(utf16).decode("ascii").rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def imap_quote(text: str) -> str:
    """A quoted IMAP string: imaplib sends arguments verbatim, so spaces would split them."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _mailbox_arg(folder: str) -> str:
    return imap_quote(imap_utf7_encode(folder))


def _check(typ: str, data: Sequence[object], what: str) -> None:
    if typ != "OK":
        raise DovecotError(f"IMAP {what} failed: {typ} {data!r}")


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn that makes Linux SIGTERM Dovecot when the test process dies.

    Without it a pytest killed by a timeout leaves Dovecot running forever. libc is resolved
    here, before fork, so the child only makes one system call (preexec_fn must not take
    locks). The signal is tied to the forking *thread*: fixtures start it from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return preexec


class DovecotServer:
    """One Dovecot: passwd-file users, Maildir++ mail, plaintext auth on loopback, "/" separator.

    The temp folder (config, users, mail, log) survives ``stop()``/``start()`` so tests can
    restart the server under a client; ``close()`` stops it and removes the folder.
    """

    separator = "/"

    def __init__(
        self, binary: str | None = None, root: Path | None = None, tls: TlsFiles | None = None
    ) -> None:
        found = binary or find_dovecot()
        if found is None:
            raise DovecotError(f"dovecot binary not found; {DOVECOT_HINT}")
        self.binary: str = found
        self.host = "127.0.0.1"
        self.port = 0
        # The imaps (implicit TLS) port; 0 while not started and always 0 without ``tls``.
        self.ssl_port = 0
        self.tls = tls
        self._own_root = root is None
        # mkdtemp under the system temp dir unless that is too long for Dovecot's sockets.
        parent = tempfile.gettempdir()
        if len(parent) > _MAX_BASE_DIR - 20:
            parent = "/tmp"
        self.root: Path = root or Path(tempfile.mkdtemp(prefix="cdv-", dir=parent))
        self.mail_root = self.root / "mail"
        # One passwd-file per user ("users/%u"): Dovecot re-reads a passwd-file at most once a
        # second (measured: a user added right after a login is refused for up to 1 s), but a
        # file it has never opened is read at once. So new users can log in immediately.
        self.users_dir = self.root / "users"
        self.log_path = self.root / "dovecot.log"
        self._stderr_path = self.root / "dovecot.stderr"
        self._config_path = self.root / "dovecot.conf"
        self._tls_dir = self.root / "tls"
        self._users: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self._rootless = os.geteuid() != 0
        if self._rootless:
            self._mail_uid, self._mail_gid = os.getuid(), os.getgid()
        else:
            self._mail_uid, self._mail_gid = MAIL_UID, MAIL_GID
        self._prepare_tree()

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start Dovecot and wait for its IMAP greeting.

        The first start picks a free port (retrying if another process takes it first); a
        restart after ``stop()`` reuses that port, so clients configured earlier reconnect.
        """
        if self.running:
            raise DovecotError("dovecot is already running")
        if self.port:
            self._start_once(self.port, self.ssl_port)
            return
        last_error: DovecotError | None = None
        for _attempt in range(3):
            port = free_port(self.host)
            ssl_port = self._free_ssl_port(port) if self.tls is not None else 0
            try:
                self._start_once(port, ssl_port)
                return
            except DovecotError as error:
                last_error = error
                # never started: the next start() picks ports again
                self.port = self.ssl_port = 0
                if "Address already in use" not in str(error):
                    raise
                log.warning("dovecot port %d was taken, retrying on another", port)
        assert last_error is not None
        raise last_error

    def _free_ssl_port(self, port: int) -> int:
        # Two quick free_port() calls can hand out the same port once it is released.
        for _attempt in range(10):
            ssl_port = free_port(self.host)
            if ssl_port != port:
                return ssl_port
        raise DovecotError(f"no second free port next to {port}")

    def _start_once(self, port: int, ssl_port: int) -> None:
        self._starts += 1
        self.port = port
        self.ssl_port = ssl_port
        # A fresh base_dir per start: a stale anvil-auth-penalty socket left by the previous
        # run makes the next logins wait 5 s (measured).
        base_dir = self.root / f"r{self._starts}"
        if len(str(base_dir)) > _MAX_BASE_DIR:
            raise DovecotError(f"base_dir {base_dir} is too long for unix sockets")
        base_dir.mkdir(mode=0o755)
        self._write_config(base_dir)
        # Judge this start by what it logs, not by an earlier run's lines in the same files.
        log_offsets = [p.stat().st_size if p.exists() else 0 for p in self._log_files]
        started = time.monotonic()
        with self._stderr_path.open("ab") as stderr:
            self._proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(self._config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                preexec_fn=_parent_death_signal(),  # see there: only a prctl() call
                # Its own process group, so stop() can reach every Dovecot process at once.
                start_new_session=True,
            )
        try:
            self._wait_for_greeting(started + _START_TIMEOUT, log_offsets)
        except DovecotError:
            self._terminate()
            raise
        log.info(
            "dovecot pid %d listening on %s:%d%s (started in %.3f s, root %s)",
            self._proc.pid,
            self.host,
            self.port,
            f" and imaps {self.ssl_port}" if self.ssl_port else "",
            time.monotonic() - started,
            self.root,
        )

    @property
    def _log_files(self) -> tuple[Path, Path]:
        return (self._stderr_path, self.log_path)

    def _new_log_text(self, offsets: Sequence[int]) -> str:
        parts = []
        for path, offset in zip(self._log_files, offsets, strict=True):
            if path.exists():
                with path.open("rb") as handle:
                    handle.seek(offset)
                    parts.append(handle.read().decode("utf-8", "replace"))
        return "".join(parts)

    def _wait_for_greeting(self, deadline: float, log_offsets: Sequence[int]) -> None:
        assert self._proc is not None
        while True:
            if self._proc.poll() is not None:
                raise DovecotError(
                    f"dovecot exited with code {self._proc.returncode}:\n"
                    + self._new_log_text(log_offsets)
                )
            # A service that cannot start makes the master retry with growing delays instead
            # of exiting: fail at once instead of waiting for the deadline.
            new_log = self._new_log_text(log_offsets)
            if "Fatal:" in new_log:
                raise DovecotError(f"dovecot reported a fatal error:\n{new_log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                    greeting = sock.recv(512)
                if greeting.startswith(b"* OK"):
                    return
            except OSError:
                pass  # not listening yet: keep polling until the deadline
            if time.monotonic() > deadline:
                raise DovecotError(f"dovecot did not greet within {_START_TIMEOUT} s")
            time.sleep(0.01)

    def stop(self) -> None:
        """SIGTERM Dovecot and wait (about 1 s). Clients are cut off; mail and users stay."""
        if self._proc is None:
            return
        self._terminate()
        log.info("dovecot on port %d stopped", self.port)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            # The whole group, not just the master: imap processes outlive a SIGTERMed master
            # (measured: a logged-in client could still NOOP after stop()), unlike a real
            # server going down. The master is not reaped yet, so its group id is still ours.
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("dovecot pid %d ignored SIGTERM, killing it", proc.pid)
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """Stop and remove the temp folder (if this object made it)."""
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def log_text(self) -> str:
        """Dovecot's log file, plus anything it printed before opening it (config errors)."""
        parts = []
        for path in self._log_files:
            if path.exists():
                parts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "".join(parts)

    # -- files ---------------------------------------------------------------------------

    def _prepare_tree(self) -> None:
        # mkdtemp makes 0700 folders owned by root; Dovecot's auth process (user dovecot) and
        # mail processes (65534) must traverse every parent or logins fail with "Temporary
        # authentication failure" / [SERVERBUG]. Make the whole chain 0755 up to /.
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in (self.root, *self.root.parents):
            if folder == Path("/"):
                break
            mode = folder.stat().st_mode & 0o777
            if mode & 0o055 != 0o055:
                with contextlib.suppress(PermissionError):
                    folder.chmod(mode | 0o055)
        self.mail_root.mkdir(mode=0o755, exist_ok=True)
        self._chown(self.mail_root)
        (self.root / "state").mkdir(mode=0o755, exist_ok=True)
        self.users_dir.mkdir(mode=0o755, exist_ok=True)
        if self.tls is not None:
            self._copy_tls_files(self.tls)

    def _copy_tls_files(self, tls: TlsFiles) -> None:
        # Dovecot gets its own copies inside its root, whose folders were made traversable
        # above, so every file its config names lives there and outlives the caller's
        # folder. The key can stay 0600, owned by whoever starts Dovecot: "<file" settings
        # are read by the config process as that user (root, or the rootless user), never by
        # the login processes (dovenull); measured: a root-owned 0600 key works.
        self._tls_dir.mkdir(mode=0o755, exist_ok=True)
        cert, key = self._tls_dir / "server.pem", self._tls_dir / "server.key"
        shutil.copyfile(tls.cert, cert)
        cert.chmod(0o644)
        key.touch(mode=0o600)
        key.chmod(0o600)
        shutil.copyfile(tls.key, key)

    def _chown(self, path: Path) -> None:
        if not self._rootless:
            os.chown(path, self._mail_uid, self._mail_gid)

    def _write_config(self, base_dir: Path) -> None:
        if self._rootless:
            # Rootless: every service runs as the current user; the sockets' group must be
            # one we belong to, or the master's chown() of them fails at startup.
            me = getpass.getuser()
            group = grp.getgrgid(os.getgid()).gr_name
            users = (
                f"default_internal_user = {me}\ndefault_login_user = {me}\n"
                f"default_internal_group = {group}\n"
            )
            # chroot() needs root; these two services chroot by default.
            no_chroot = "  chroot =\n"
        else:
            no_chroot = ""
            users = "default_internal_user = dovecot\ndefault_login_user = dovenull\n"
        if self.tls is None:
            ssl_settings = "ssl = no\n"
            imaps_listener = "  inet_listener imaps {\n    port = 0\n  }\n"
        else:
            # ssl = yes, not "required": plaintext logins stay allowed on the imap port, so the
            # same server answers plain, STARTTLS and imaps clients. ssl_dh is not needed with
            # the EC key from tests.support.tls (ECDHE, and TLS 1.3, need no DH parameters).
            ssl_settings = (
                "ssl = yes\n"
                f"ssl_cert = <{self._tls_dir / 'server.pem'}\n"
                f"ssl_key = <{self._tls_dir / 'server.key'}\n"
                "ssl_min_protocol = TLSv1.2\n"
            )
            imaps_listener = (
                "  inet_listener imaps {\n"
                f"    address = {self.host}\n"
                f"    port = {self.ssl_port}\n"
                "    ssl = yes\n"
                "  }\n"
            )
        config = f"""\
# Written by tests/support/dovecot.py; reads nothing from /etc/dovecot.
base_dir = {base_dir}
state_dir = {self.root / "state"}
instance_name = casedesk-test-{os.getpid()}-{id(self):x}-{self._starts}
log_path = {self.log_path}
protocols = imap
listen = {self.host}
{ssl_settings}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
{users}first_valid_uid = 1
mail_location = maildir:{self.mail_root}/%u
# Test mail needs no durability; fsync would only slow APPEND down.
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = {self.separator}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users_dir}/%u
}}
userdb {{
  driver = static
  args = uid={self._mail_uid} gid={self._mail_gid} home={self.mail_root}/%u
}}
service imap-login {{
{no_chroot}  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
{imaps_listener}}}
# Without this block, failed logins make later good logins from 127.0.0.1 wait up to 15 s.
service anvil {{
{no_chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        self._config_path.write_text(config, encoding="utf-8")

    # -- users and folders ---------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Add (or re-password) a user; works while Dovecot runs."""
        for value, what in ((name, "name"), (password, "password")):
            if not value or any(c in value for c in ":\n\r\0") or (what == "name" and "/" in value):
                raise ValueError(f"user {what} {value!r} cannot go into a passwd-file")
        if name.startswith("."):
            raise ValueError(f"user name {name!r} must not start with '.'")
        previous = self._users.get(name)
        self._users[name] = password
        # Write-then-rename so Dovecot never reads a half-written file.
        path = self.users_dir / name
        tmp = self.users_dir / f".{name}.tmp"
        tmp.write_text(f"{name}:{{PLAIN}}{password}\n", encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(path)
        if previous is not None and previous != password:
            # A changed file is only re-read once the second of its last read has passed:
            # wait, so the new password works when this returns.
            time.sleep(1.1)
        log.debug("dovecot user %s added", name)

    def remove_user(self, name: str) -> None:
        """Forget a user and delete their mail (the imap_user fixture's cleanup).

        Dovecot re-reads passwd-files at most once a second, so a login in the next second
        may still be accepted (measured); it is refused after that.
        """
        self._users.pop(name, None)
        (self.users_dir / name).unlink(missing_ok=True)
        shutil.rmtree(self.mail_root / name, ignore_errors=True)

    def password(self, user: str) -> str:
        try:
            return self._users[user]
        except KeyError:
            raise DovecotError(f"no such test user {user!r}") from None

    @contextlib.contextmanager
    def imap(self, user: str) -> Iterator[imaplib.IMAP4]:
        """A logged-in imaplib connection as ``user``, logged out afterwards."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=_IMAP_TIMEOUT)
        try:
            conn.login(user, self.password(user))
            yield conn
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                conn.logout()
            # logout() closes the socket on success; make sure on every path (ResourceWarning).
            with contextlib.suppress(OSError):
                conn.shutdown()

    def create_folder(self, user: str, folder: str) -> None:
        """CREATE and SUBSCRIBE a folder; an existing folder is fine."""
        with self.imap(user) as conn:
            self._create(conn, folder)

    @staticmethod
    def _create(conn: imaplib.IMAP4, folder: str) -> None:
        if folder.upper() == "INBOX":
            return
        typ, data = conn.create(_mailbox_arg(folder))
        if typ != "OK" and b"ALREADYEXISTS" not in b" ".join(
            d for d in data if isinstance(d, bytes)
        ):
            raise DovecotError(f"IMAP CREATE {folder!r} failed: {typ} {data!r}")
        typ, data = conn.subscribe(_mailbox_arg(folder))
        _check(typ, data, f"SUBSCRIBE {folder!r}")

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        flags: Iterable[str] = (),
        date: dt.datetime | None = None,
    ) -> int:
        """IMAP APPEND one message (creating the folder if needed); returns its UID.

        ``flags`` like ``("\\Seen",)``; ``date`` becomes INTERNALDATE (aware datetimes keep
        their zone; naive ones are taken as local time, as imaplib does).
        """
        with self.imap(user) as conn:
            return self._append(conn, folder, raw, flags, date)

    def append_many(self, user: str, folder: str, raws: Iterable[bytes]) -> list[int]:
        """APPEND several messages over one connection (about 560 msg/s); returns UIDs."""
        with self.imap(user) as conn:
            return [self._append(conn, folder, raw, (), None) for raw in raws]

    def _append(
        self,
        conn: imaplib.IMAP4,
        folder: str,
        raw: bytes,
        flags: Iterable[str],
        date: dt.datetime | None,
    ) -> int:
        flag_list = " ".join(flags)
        flag_arg = f"({flag_list})" if flag_list else None
        date_arg = imaplib.Time2Internaldate(date) if date is not None else None
        for _attempt in range(2):
            typ, data = conn.append(_mailbox_arg(folder), flag_arg, date_arg, raw)
            if typ == "OK":
                break
            if b"TRYCREATE" in b" ".join(d for d in data if isinstance(d, bytes)):
                self._create(conn, folder)
                continue
            raise DovecotError(f"IMAP APPEND to {folder!r} failed: {typ} {data!r}")
        else:
            raise DovecotError(f"IMAP APPEND to {folder!r} failed after CREATE")
        # Dovecot supports UIDPLUS: "[APPENDUID <uidvalidity> <uid>] Append completed."
        match = re.search(rb"APPENDUID \d+ (\d+)", data[0] if isinstance(data[0], bytes) else b"")
        if match is None:
            raise DovecotError(f"no APPENDUID in {data!r}")
        return int(match.group(1))

    def status(self, user: str, folder: str) -> dict[str, int]:
        """STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN) of a folder as a dict."""
        with self.imap(user) as conn:
            typ, data = conn.status(_mailbox_arg(folder), "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
            _check(typ, data, f"STATUS {folder!r}")
        line = data[0] if isinstance(data[0], bytes) else b""
        return {
            key.decode(): int(value)
            for key, value in re.findall(rb"([A-Z]+) (\d+)", line.rpartition(b"(")[2])
        }

    # -- the maildir, behind Dovecot's back ----------------------------------------------

    def folder_path(self, user: str, folder: str) -> Path:
        """The maildir of a folder (Maildir++: INBOX is the user root, others ``.A.B``)."""
        user_root = self.mail_root / user
        if folder.upper() == "INBOX":
            return user_root
        encoded = imap_utf7_encode(folder)
        if "." in encoded:
            raise ValueError(f"folder {folder!r}: '.' is Maildir++'s on-disk separator")
        return user_root / ("." + encoded.replace(self.separator, "."))

    def _ensure_maildir(self, user: str, folder: str) -> Path:
        self.password(user)  # a clear error for unknown users
        path = self.folder_path(user, folder)
        made: list[Path] = []
        for directory in (self.mail_root / user, path):
            for sub in (directory, directory / "cur", directory / "new", directory / "tmp"):
                if not sub.exists():
                    sub.mkdir(mode=0o700)
                    made.append(sub)
        if path != self.mail_root / user and not (path / "maildirfolder").exists():
            (path / "maildirfolder").touch(mode=0o600)
            made.append(path / "maildirfolder")
            # Subscribed like create_folder() does, so clients that LSUB see it too.
            subs = self.mail_root / user / "subscriptions"
            names = subs.read_text(encoding="utf-8").splitlines() if subs.exists() else []
            if folder not in names:
                subs.write_text("\n".join([*names, folder]) + "\n", encoding="utf-8")
                made.append(subs)
        for item in made:
            self._chown(item)
        return path

    def deliver_fast(self, user: str, folder: str, raws: Sequence[bytes]) -> None:
        """Write messages straight into the folder's ``new/`` (25x faster than APPEND).

        They get UIDs in list order on the next SELECT/STATUS: Dovecot sorts new files by
        the time in their names, so each gets a strictly later microsecond.
        """
        path = self._ensure_maildir(user, folder)
        host = socket.gethostname().replace("/", "_").replace(":", "_") or "localhost"
        first_us = time.time_ns() // 1000
        pid = os.getpid()
        for index, raw in enumerate(raws):
            stamp = first_us + index
            name = f"{stamp // 1_000_000}.M{stamp % 1_000_000}P{pid}Q{index}.{host}"
            tmp = path / "tmp" / name
            tmp.write_bytes(raw)
            self._chown(tmp)
            # Maildir delivery: complete the file in tmp/, then rename into new/.
            tmp.rename(path / "new" / name)
        log.debug("delivered %d messages to %s/%s on disk", len(raws), user, folder)

    def change_uidvalidity(self, user: str, folder: str) -> int:
        """Give a folder a new UIDVALIDITY (as a restored or rebuilt server does); returns it.

        Messages stay; clients must treat every UID they remembered as void. Done by rewriting
        the header of ``dovecot-uidlist`` and dropping the indexes that cache the old value.
        Connections that have the folder selected notice on their next sync.
        """
        old = self.status(user, folder)["UIDVALIDITY"]  # also makes Dovecot write the uidlist
        path = self.folder_path(user, folder)
        uidlist = path / "dovecot-uidlist"
        lines = uidlist.read_bytes().split(b"\n")
        header = lines[0].split(b" ")
        if header[0] != b"3":
            raise DovecotError(f"unexpected dovecot-uidlist header {lines[0]!r}")
        new = old + 1
        lines[0] = b" ".join(f"V{new}".encode() if f.startswith(b"V") else f for f in header)
        tmp = path / "dovecot-uidlist.casedesk-tmp"
        tmp.write_bytes(b"\n".join(lines))
        self._chown(tmp)
        tmp.replace(uidlist)
        for cached in (
            *path.glob("dovecot.index*"),
            *(self.mail_root / user).glob("dovecot.list.index*"),
        ):
            cached.unlink()
        seen = self.status(user, folder)["UIDVALIDITY"]
        if seen != new:
            raise DovecotError(f"UIDVALIDITY of {folder!r} is {seen}, expected {new}")
        log.info("UIDVALIDITY of %s/%s changed %d -> %d", user, folder, old, new)
        return new
