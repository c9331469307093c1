"""SSH to a DPU with paramiko: one verified connection per DPU per session, reused.

- Host keys are checked against ``known_hosts``; an unknown host is refused (with the
  fingerprint and how to trust it) unless the DPU says ``trust_on_first_use``, which
  appends one line to the file (one ``O_APPEND`` write: the user's lines, comments and
  markers stay as they are); a changed key, or one marked ``@revoked``, is always refused.
  ``@cert-authority`` lines are kept and ignored (AWE does not check host certificates).
- ``~/.ssh/config`` is honoured: host aliases, ``User``, ``Port``, ``IdentityFile`` and
  ``ProxyJump`` (through a direct-tcpip channel of the jump host's own connection).
- Every argument is quoted (``shlex.join``); stdout and stderr are drained while the command
  runs (paramiko deadlocks on large output otherwise); every call has a timeout.
- Keepalives detect a dead connection; a broken one is reopened with back-off on the next
  call, so a restarted sshd or a laptop that slept costs one retry, not a new session.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import paramiko

from awe.dpu.remote.shell import DEFAULT_TIMEOUT, CommandResult, RemoteError, Shell
from awe.dpu_definitions import DPUDefinition

KEEPALIVE_SECONDS = 15
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 4.0)
READ_CHUNK = 1 << 16


class HostKeyError(RemoteError):
    """The server's host key is unknown or has changed."""


class KnownHosts:
    """An OpenSSH ``known_hosts`` file, read by AWE itself: plain and hashed host lines,
    ``@revoked`` keys, ``@cert-authority`` lines (skipped), comments and lines it cannot
    parse (skipped: they are the user's, never rewritten)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: The host keys to trust (none of them revoked).
        self.keys = paramiko.HostKeys()
        self.revoked: list[Any] = []
        trusted: list[paramiko.hostkeys.HostKeyEntry] = []
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return
        for number, line in enumerate(text.splitlines(), 1):
            words = line.strip()
            if not words or words.startswith("#"):
                continue
            marker = None
            if words.startswith("@"):
                marker, _, words = words.partition(" ")
                words = words.strip()
            entry = _entry(words, number)
            if entry is None or marker == "@cert-authority":
                continue
            if marker == "@revoked":
                self.revoked.append(entry.key)
            elif marker is None:
                trusted.append(entry)
        for entry in trusted:
            if not self.is_revoked(entry.key):
                for name in entry.hostnames:
                    self.keys.add(name, entry.key.get_name(), entry.key)

    def is_revoked(self, key: Any) -> bool:
        return any(key == revoked for revoked in self.revoked)

    def append(self, hostname: str, key: Any) -> None:
        """Record ``hostname``'s key: one line added with one ``O_APPEND`` write (after a
        line break if the file's last line lacks one), so concurrent writers interleave
        whole lines and nothing already in the file is touched."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(descriptor).st_size
            if size and os.pread(descriptor, 1, size - 1) != b"\n":
                line = "\n" + line
            os.write(descriptor, line.encode())
        finally:
            os.close(descriptor)
        self.keys.add(hostname, key.get_name(), key)


def _entry(words: str, number: int) -> paramiko.hostkeys.HostKeyEntry | None:
    try:
        return paramiko.hostkeys.HostKeyEntry.from_line(words, number)
    except (paramiko.SSHException, paramiko.hostkeys.InvalidHostKey, ValueError):
        return None  # a key type or line paramiko cannot read: not ours to judge


def _refuse_revoked(known_hosts: KnownHosts, hostname: str, key: Any) -> None:
    if known_hosts.is_revoked(key):
        raise HostKeyError(
            f"REVOKED host key for {hostname}: the server offered {key.get_name()} "
            f"{_fingerprint(key)}, which {known_hosts.path} marks @revoked. Refusing to "
            f"connect; ask the host's administrator which key is current."
        )


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def __init__(self, known_hosts: KnownHosts) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        _refuse_revoked(self.known_hosts, hostname, key)
        fingerprint = _fingerprint(key)
        host, port = _split_host(hostname)
        scan = f"ssh-keyscan -p {port} {host}" if port else f"ssh-keyscan {host}"
        raise HostKeyError(
            f"unknown host key for {hostname}: {key.get_name()} {fingerprint}. Refusing to "
            f"connect. If this is the right host (compare the fingerprint with its "
            f"administrator's), add it: {scan} >> {self.known_hosts.path}, or set "
            f"host_key_policy='trust_on_first_use' for this DPU."
        )


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    def __init__(self, known_hosts: KnownHosts) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        _refuse_revoked(self.known_hosts, hostname, key)
        self.known_hosts.append(hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)


def _fingerprint(key: Any) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _split_host(hostname: str) -> tuple[str, int | None]:
    if hostname.startswith("[") and "]:" in hostname:
        host, port = hostname[1:].split("]:")
        return host, int(port)
    return hostname, None


class SSHShell(Shell):
    """Commands and files on a DPU's host, over one reused SSH connection."""

    def __init__(self, definition: DPUDefinition, ssh_config: Path | None = None) -> None:
        self.definition = definition
        self.settings = _resolve(definition, ssh_config or Path("~/.ssh/config").expanduser())
        user = self.settings.get("user")
        self.where = f"{user + '@' if user else ''}{definition.host}:{self.settings['port']}"
        self.known_hosts = Path(definition.known_hosts or "~/.ssh/known_hosts").expanduser()
        self.bytes_uploaded = 0
        self._client: paramiko.SSHClient | None = None
        self._jump: SSHShell | None = None
        self._sftp: paramiko.SFTPClient | None = None

    # ---- the connection ----
    def _connected(self) -> paramiko.SSHClient:
        transport = self._client.get_transport() if self._client else None
        if transport is not None and transport.is_active():
            return self._client
        self.close()
        last: Exception | None = None
        for delay in (0.0, *RECONNECT_DELAYS):
            time.sleep(delay)
            try:
                self._client = self._connect()
                return self._client
            except HostKeyError:
                raise
            except paramiko.BadHostKeyException as err:
                _refuse_revoked(KnownHosts(self.known_hosts), self.where, err.key)
                raise HostKeyError(
                    f"HOST KEY CHANGED for {self.where}: the server offered "
                    f"{_fingerprint(err.key)} but {self.known_hosts} has "
                    f"{_fingerprint(err.expected_key)}. Refusing to connect: this may be an "
                    f"attack. If the host was really reinstalled, remove its old line from "
                    f"{self.known_hosts} and connect again."
                ) from None
            except paramiko.AuthenticationException as err:
                raise RemoteError(
                    f"{self.where} refused our key ({err}). Check 'user' and 'identity_file' "
                    f"of DPU {self.definition.name!r} (or IdentityFile in ~/.ssh/config)."
                ) from None
            except (OSError, paramiko.SSHException) as err:
                last = err
        raise RemoteError(
            f"cannot connect to {self.where} ({last}); tried {len(RECONNECT_DELAYS) + 1} times. "
            f"Is the host up and sshd running? Try: ssh -p {self.settings['port']} "
            f"{self.definition.host}"
        )

    def _connect(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        known_hosts = KnownHosts(self.known_hosts)
        for hostname, keys in known_hosts.keys.items():
            for key in keys.values():
                client.get_host_keys().add(hostname, key.get_name(), key)
        policy = (
            _TrustOnFirstUse(known_hosts)
            if self.definition.host_key_policy == "trust_on_first_use"
            else _RefuseUnknown(known_hosts)
        )
        client.set_missing_host_key_policy(policy)
        sock = None
        if self.settings.get("proxyjump"):
            sock = self._jump_channel(self.settings["proxyjump"])
        timeout = self.definition.connect_timeout
        client.connect(
            self.settings["hostname"],
            port=self.settings["port"],
            username=self.settings.get("user"),
            key_filename=self.settings.get("identityfile"),
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            sock=sock,
        )
        client.get_transport().set_keepalive(KEEPALIVE_SECONDS)
        return client

    def _jump_channel(self, jump: str) -> Any:
        user, _, rest = jump.rpartition("@")
        host, _, port = rest.partition(":")
        definition = DPUDefinition(
            name=f"{self.definition.name}-jump",
            host=host,
            user=user or None,
            port=int(port) if port else None,
            host_key_policy=self.definition.host_key_policy,
            known_hosts=self.definition.known_hosts,
            connect_timeout=self.definition.connect_timeout,
        )
        self._jump = SSHShell(definition)
        transport = self._jump._connected().get_transport()
        return transport.open_channel(
            "direct-tcpip",
            (self.settings["hostname"], self.settings["port"]),
            ("127.0.0.1", 0),
            timeout=self.definition.connect_timeout,
        )

    def close(self) -> None:
        for closable in (self._sftp, self._client, self._jump):
            if closable is not None:
                with contextlib.suppress(Exception):  # closing a dead connection may fail
                    closable.close()
        self._client = self._sftp = self._jump = None

    # ---- commands ----
    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        words = list(argv)
        if env:
            words = ["env", *(f"{k}={v}" for k, v in env.items()), *words]
        command = shlex.join(words)
        client = self._connected()
        try:
            channel = client.get_transport().open_session(timeout=self.definition.connect_timeout)
            channel.settimeout(1.0)
            channel.exec_command(command)
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            return self._collect(channel, tuple(words), timeout)
        except KeyboardInterrupt:
            # Ctrl-C mid-command leaves the connection mid-conversation: close it now,
            # while its transport thread can still end (left to the interpreter's exit, a
            # daemon thread frozen holding paramiko's write lock can hang the exit)
            self.close()
            raise
        except (OSError, paramiko.SSHException, EOFError) as err:
            self.close()
            raise RemoteError(
                f"lost the connection to {self.where} during {words[0]}: {err}"
            ) from None

    def _collect(self, channel: Any, argv: tuple[str, ...], timeout: float) -> CommandResult:
        deadline = time.monotonic() + timeout
        stdout, stderr = bytearray(), bytearray()
        try:
            while True:
                progressed = False
                while channel.recv_ready():
                    stdout += channel.recv(READ_CHUNK)
                    progressed = True
                while channel.recv_stderr_ready():
                    stderr += channel.recv_stderr(READ_CHUNK)
                    progressed = True
                if (
                    channel.exit_status_ready()
                    and not channel.recv_ready()
                    and (not channel.recv_stderr_ready())
                ):
                    break
                if time.monotonic() > deadline:
                    raise RemoteError(
                        f"{argv[0]} on {self.where} did not finish within {timeout:g} s"
                    )
                if not progressed:
                    channel.status_event.wait(0.01)
            code = channel.recv_exit_status()
        finally:
            channel.close()
        return CommandResult(argv, code, bytes(stdout), bytes(stderr))

    # ---- files ----
    def _sftp_client(self) -> paramiko.SFTPClient:
        client = self._connected()
        if self._sftp is None or self._sftp.get_channel().closed:
            self._sftp = client.open_sftp()
            self._sftp.get_channel().settimeout(self.definition.command_timeout)
        return self._sftp

    def put_file(self, local: Path, remote: str) -> None:
        sftp = self._sftp_client()
        temporary = f"{remote}.part-{os.getpid()}"
        try:
            sftp.put(str(local), temporary)
            sftp.posix_rename(temporary, remote)
        except KeyboardInterrupt:  # as in run: close mid-conversation connections now
            self.close()
            raise
        except (OSError, paramiko.SSHException) as err:
            self.close()
            raise RemoteError(
                f"uploading {local.name} to {self.where}:{remote} failed: {err}"
            ) from None
        self.bytes_uploaded += local.stat().st_size

    def put_bytes(self, data: bytes, remote: str) -> None:
        sftp = self._sftp_client()
        temporary = f"{remote}.part-{os.getpid()}"
        try:
            folder = remote.rsplit("/", 1)[0]
            if folder and not self.exists(folder):
                self.run(["mkdir", "-p", folder]).check(f"creating {folder}")
            sftp.putfo(io.BytesIO(data), temporary)
            sftp.posix_rename(temporary, remote)
        except (OSError, paramiko.SSHException) as err:
            self.close()
            raise RemoteError(f"uploading to {self.where}:{remote} failed: {err}") from None
        self.bytes_uploaded += len(data)

    def exists(self, remote: str) -> bool:
        try:
            self._sftp_client().stat(remote)
            return True
        except FileNotFoundError:
            return False
        except (OSError, paramiko.SSHException) as err:
            self.close()
            raise RemoteError(f"cannot look at {self.where}:{remote}: {err}") from None

    def get_file(self, remote: str, local: Path) -> None:
        temporary = local.with_name(f".{local.name}.part")
        try:
            self._sftp_client().get(remote, str(temporary))
        except (OSError, paramiko.SSHException) as err:
            self.close()
            raise RemoteError(f"downloading {self.where}:{remote} failed: {err}") from None
        os.replace(temporary, local)


def _resolve(definition: DPUDefinition, ssh_config: Path) -> dict[str, Any]:
    """Connection settings: the DPU definition first, then ``~/.ssh/config`` for its host."""
    looked_up: dict[str, Any] = {}
    if ssh_config.exists():
        config = paramiko.SSHConfig.from_path(str(ssh_config))
        looked_up = config.lookup(definition.host)
    identity = definition.identity_file or (looked_up.get("identityfile") or [None])[0]
    return {
        "hostname": looked_up.get("hostname", definition.host),
        "port": definition.port or int(looked_up.get("port", 22)),
        "user": definition.user or looked_up.get("user"),
        "identityfile": os.path.expanduser(identity) if identity else None,
        "proxyjump": looked_up.get("proxyjump"),
    }
