"""`labedge service install|uninstall|status`: the real steps with a fake service manager (the stand-in
for Windows and for a CI machine without a running systemd), the real systemd and WinSW classes with
a recording runner, and the generated unit checked by `systemd-analyze verify`."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.machine import ENV_ROOT, system_paths
from agent.service import install as svc
from agent.service.autostart import WindowsRunKey, XdgAutostart
from agent.service.managers import CommandResult, SystemdManager, WinswManager
from agent.service.templates import ServiceSpec, command_for, systemd_unit, unit_values, winsw_xml
from deploy_helpers import (OTHER_USER, FakeServiceManager, checker_as_user, mode, need_root, open_root, owner,
                            remove_root)

CONFIG = """config_version = 1
device_id = "pc-01"
[web]
enabled = false
[[instruments]]
id = "xrd-01"
watch = ["{watch}"]
"""


@pytest.fixture()
def root(monkeypatch):
    r = open_root()
    monkeypatch.setenv(ENV_ROOT, str(r))
    yield r
    remove_root(r)


def admin_config(root: Path, watch: Path, extra: str = "") -> Path:
    """The config as an administrator writes it, in their own folder."""
    src = root / "admin" / "labedge.toml"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(CONFIG.format(watch=watch.as_posix()) + extra, "utf-8")
    return src


class Recorder:
    def __init__(self, answers: dict[str, CommandResult] | None = None) -> None:
        self.argv: list[list[str]] = []
        self.answers = answers or {}

    def __call__(self, argv):  # noqa: ANN001, ANN204
        self.argv.append(list(argv))
        for needle, res in self.answers.items():
            if needle in " ".join(argv):
                return res
        return CommandResult(0, "")


def test_install_refuses_a_bad_config_with_checks_message(root: Path) -> None:
    src = admin_config(root, root / "no-such-folder")
    fake, auto = FakeServiceManager(), XdgAutostart(root / "autostart")
    with pytest.raises(svc.InstallRefused) as exc:
        svc.install(svc.InstallOptions(config=src, user="root", tray=True), fake, auto, checker=checker_as_user)
    words = str(exc.value)
    assert "no-such-folder" in words and "does not exist" in words and str(src) in words, words
    assert "nothing was installed" in words
    assert fake.calls == [] and not auto.file.exists()
    assert not system_paths().config_file.exists() and list(system_paths().config_dir.iterdir()) == []


def test_install_refuses_a_user_mode_config(root: Path) -> None:
    watch = root / "data"
    watch.mkdir()
    src = admin_config(root, watch)
    src.write_text('mode = "user"\n' + src.read_text("utf-8"), "utf-8")
    fake = FakeServiceManager()
    with pytest.raises(svc.InstallRefused, match='mode = "system"'):
        svc.install(svc.InstallOptions(config=src, user="root"), fake, checker=checker_as_user)
    assert fake.calls == []


def test_install_refuses_what_the_service_account_cannot_read(root: Path) -> None:
    need_root()
    watch = root / "private-data"
    watch.mkdir(mode=0o700)  # root's folder: the service account would restart-loop on it
    watch.chmod(0o700)
    fake = FakeServiceManager()
    with pytest.raises(svc.InstallRefused) as exc:
        svc.install(svc.InstallOptions(config=admin_config(root, watch), user=OTHER_USER), fake,
                    checker=checker_as_user)
    assert f"as the service account {OTHER_USER!r}" in str(exc.value) and "private-data" in str(exc.value)
    assert "permission denied" in str(exc.value)
    assert [c[0] for c in fake.calls] == ["ensure_account"]  # never registered
    assert not system_paths().config_file.exists()


def test_install_secures_folders_and_key_then_registers(root: Path) -> None:
    need_root()
    watch = root / "data"
    watch.mkdir()
    src = admin_config(root, watch)
    src.write_text(f'spool_dir = "{(root / "bigdisk" / "spool").as_posix()}"\n' + src.read_text("utf-8"), "utf-8")
    fake, auto = FakeServiceManager(), XdgAutostart.machine_wide()
    done = svc.install(svc.InstallOptions(config=src, user=OTHER_USER, tray=True, command=["/opt/labedge/labedge"]),
                       fake, auto, checker=checker_as_user)
    sp = system_paths()
    assert [c[0] for c in fake.calls] == ["ensure_account", "install"]
    spec: ServiceSpec = fake.calls[1][1]
    assert spec.command == ("/opt/labedge/labedge", "run", "--system", "--config", str(sp.config_file))
    assert spec.user == OTHER_USER and spec.system_root == str(root)
    spool = root / "bigdisk" / "spool"
    assert spec.read_write_paths == (sp.base_dir, spool, sp.log_dir)  # state is inside the base folder
    assert unit_values(systemd_unit(spec))["ReadWritePaths"] == [f"{sp.base_dir} {spool} {sp.log_dir}", "-/run/lock"]
    installed = sp.config_file.read_text("utf-8")
    assert installed.startswith('mode = "system"') and CONFIG.format(watch=watch.as_posix()) in installed
    assert (owner(sp.config_file), mode(sp.config_file)) == ("root", 0o644)
    for d in (sp.state_dir, spool, sp.log_dir):
        assert (owner(d), mode(d)) == (OTHER_USER, 0o700), d
    assert (owner(sp.base_dir), mode(sp.base_dir)) == (OTHER_USER, 0o755)
    assert auto.file == root / "etc/xdg/autostart/labedge-tray.desktop"
    assert "Exec=/opt/labedge/labedge tray --system" in auto.file.read_text("utf-8")
    assert any("installed the labedge service" in line for line in done)
    assert not list(sp.config_dir.glob(".*checking"))


def test_install_gives_the_key_to_the_service_account_only(root: Path) -> None:
    """A real enrolled key and signed certificate: install hands the key to the service account
    (0600, pki/ 0700), and `labedge check` as that account then accepts the [upload] files."""
    need_root()
    import sys

    from deploy_helpers import REPO

    def labedge(*args: str) -> None:
        res = subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, cwd=REPO,
                             timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr

    sp = system_paths()
    watch = root / "data"
    watch.mkdir()
    labedge("pki", "init", "--out", str(root / "ca"))
    labedge("enroll", "--name", "pc-01", "--out", str(sp.pki_dir))
    labedge("pki", "sign-csr", "--ca", str(root / "ca"), "--csr", str(sp.pki_dir / "pc-01.csr"), "--out", str(sp.pki_dir))
    shutil.copy2(root / "ca" / "ca.pem", sp.pki_dir / "ca.pem")
    key = sp.pki_dir / "pc-01.key"
    upload = (f'[upload]\nbroker = "mqtts://127.0.0.1:1"\nca_file = "pki/ca.pem"\ncert_file = "pki/pc-01.pem"\n'
              f'key_file = "pki/pc-01.key"\n')
    src = admin_config(root, watch)
    src.write_text(src.read_text("utf-8").replace("[web]", upload + "[web]"), "utf-8")
    fake = FakeServiceManager()
    svc.install(svc.InstallOptions(config=src, user=OTHER_USER), fake, checker=checker_as_user)
    assert [c[0] for c in fake.calls] == ["ensure_account", "install"]
    assert (owner(key), mode(key)) == (OTHER_USER, 0o600)
    assert (owner(sp.pki_dir), mode(sp.pki_dir)) == (OTHER_USER, 0o700)
    assert checker_as_user(sp.config_file, "root").returncode == 0  # relative paths resolve beside it


def test_uninstall_keeps_the_spool_unless_purged(root: Path) -> None:
    sp = system_paths()
    for d in (sp.state_dir, sp.spool_dir, sp.log_dir):
        d.mkdir(parents=True)
    (sp.spool_dir / "pkg").mkdir()
    fake, auto = FakeServiceManager(installed=True, running=True), XdgAutostart(root / "autostart")
    auto.install(["labedge", "tray", "--system"])
    done = svc.uninstall(fake, auto)
    assert fake.calls == [("uninstall",)] and not auto.file.exists()
    assert (sp.spool_dir / "pkg").is_dir() and any("kept" in line and "--purge" in line for line in done)
    svc.uninstall(fake, auto, purge=True)
    assert not sp.spool_dir.exists() and not sp.state_dir.exists() and not sp.log_dir.exists()


def test_status_shows_service_state_and_agent_status(root: Path) -> None:
    from agent.status_file import write_status_file

    state, words = svc.status_words(FakeServiceManager())
    assert not state.installed and "service: not installed" in words and "no status file" in words
    sp = system_paths()
    sp.base_dir.mkdir(parents=True)
    write_status_file(sp.status_file, {"device_id": "pc-01", "config": "x", "agent": {"running": True, "version": "1"},
                                       "packages": {"queued": 2, "uploading": 0, "delivered": 5, "failed": 0},
                                       "spool_bytes": 0, "spool_max_bytes": 1, "intake": {"paused": False}})
    state, words = svc.status_words(FakeServiceManager(installed=True, running=True))
    assert state.running and "service: installed, running" in words and "2 queued" in words and "5 delivered" in words


def test_systemd_manager_commands(tmp_path: Path) -> None:
    rec = Recorder({"is-active": CommandResult(3, "inactive")})
    mgr = SystemdManager(run=rec, unit_dir=tmp_path)
    assert not mgr.state().installed
    mgr.install(ServiceSpec(command=("/opt/labedge/labedge", "run", "--system"), paths=system_paths("linux")))
    assert rec.argv == [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", "labedge.service"]]
    assert "ExecStart=/opt/labedge/labedge run --system" in mgr.unit_file.read_text("utf-8")
    st = mgr.state()
    assert st.installed and not st.running and "inactive" in st.detail
    mgr.uninstall()
    assert ["systemctl", "disable", "--now", "labedge.service"] in rec.argv and not mgr.unit_file.exists()


def test_winsw_manager_commands(tmp_path: Path) -> None:
    rec = Recorder({"status": CommandResult(0, "NonExistent")})
    mgr = WinswManager(tmp_path, run=rec)
    with pytest.raises(Exception, match="labedge-service.exe is missing"):
        mgr.install(ServiceSpec(command=("C:/labedge/labedge.exe", "run"), paths=system_paths("win32")))
    mgr.exe.write_bytes(b"MZ")
    spec = ServiceSpec(command=command_for([r"C:\Program Files\labedge\labedge.exe"], Path(r"C:\ProgramData\labedge\config\labedge.toml")),
                       paths=system_paths("win32"), system_root=r"D:\pd")
    mgr.install(spec)
    exe = str(mgr.exe)
    assert rec.argv[-2:] == [[exe, "install"], [exe, "start"]]
    xml = mgr.exe.with_suffix(".xml").read_text("utf-8")
    assert r"<executable>C:\Program Files\labedge\labedge.exe</executable>" in xml
    assert r'<arguments>run --system --config C:\ProgramData\labedge\config\labedge.toml</arguments>' in xml
    assert f'<env name="{ENV_ROOT}" value="D:\\pd"/>' in xml and "@" not in xml
    rec.answers = {"status": CommandResult(0, "Started")}
    assert mgr.state().running
    mgr.uninstall()
    assert rec.argv[-2:] == [[exe, "stop"], [exe, "uninstall"]]


def test_windows_tray_autostart_run_key() -> None:
    rec = Recorder()
    WindowsRunKey("HKLM", run=rec).install([r"C:\Program Files\labedge\labedge.exe", "tray", "--system"])
    assert rec.argv == [["reg", "add", r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run", "/v", "labedge-tray",
                         "/t", "REG_SZ", "/d", r'"C:\Program Files\labedge\labedge.exe" tray --system', "/f"]]


def test_generated_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is absent (.ci/run installs the systemd package)")
    exe = shutil.which("python3")
    spec = ServiceSpec(command=command_for([exe, "-m", "agent"], Path("/etc/labedge/labedge.toml")),
                       paths=system_paths("linux"), user="labedge")
    unit = tmp_path / "labedge.service"
    unit.write_text(systemd_unit(spec), "utf-8")
    res = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})
    ours = [ln for ln in (res.stdout + res.stderr).splitlines() if "labedge.service" in ln]
    assert res.returncode == 0 and not ours, res.stdout + res.stderr
    v = unit_values(unit.read_text("utf-8"))
    assert v["User"] == ["labedge"] and v["Wants"] == ["network-online.target"] and v["After"] == ["network-online.target"]
    assert v["Restart"] == ["on-failure"] and v["ProtectSystem"] == ["strict"] and v["NoNewPrivileges"] == ["yes"]
    assert v["PrivateTmp"] == ["yes"] and int(v["LimitNOFILE"][0]) >= 65536
    assert v["ReadWritePaths"] == ["/var/lib/labedge /var/log/labedge", "-/run/lock"]
    assert v["ExecStart"] == [f"{exe} -m agent run --system --config /etc/labedge/labedge.toml"]
    # a broken template line is what systemd-analyze is for: prove it would notice
    unit.write_text(systemd_unit(spec).replace("ProtectSystem=strict", "ProtectSystem=stricter"), "utf-8")
    res = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert "stricter" in res.stdout + res.stderr


def test_winsw_xml_and_unit_have_no_unfilled_placeholders() -> None:
    spec = ServiceSpec(command=("labedge", "run", "--system"), paths=system_paths("linux"))
    for text in (systemd_unit(spec), winsw_xml(spec)):
        assert "@" not in text.replace("Windows", "")


def test_agent_runs_under_the_units_user_and_paths(root: Path) -> None:
    """Install (fake manager, real steps), render the unit from what was installed, and run its
    ExecStart as its User= with its Environment= and WorkingDirectory=, as systemd would."""
    need_root()
    import json
    import shlex
    import signal
    import time

    from deploy_helpers import as_user, other_user_python, wait_for
    from testpaths import SAMPLES, require_shared

    sample = require_shared(SAMPLES) / "xafs" / "cu_metal_rt.xdi"
    python, extra_env = other_user_python()
    watch = root / "data"
    watch.mkdir()
    src = admin_config(root, watch).read_text("utf-8").replace("[web]", "rescan_seconds = 1\n[web]")
    (root / "admin" / "labedge.toml").write_text(src.replace('id = "xrd-01"', 'id = "xafs-01"\nsettle_seconds = 0.3\n'
                                                             'hold_seconds = 0'), "utf-8")
    fake = FakeServiceManager()
    svc.install(svc.InstallOptions(config=root / "admin" / "labedge.toml", user=OTHER_USER,
                                   command=[python, "-m", "agent"]), fake, checker=checker_as_user)
    unit = unit_values(systemd_unit(fake.calls[-1][1]))
    assert unit["User"] == [OTHER_USER]
    env = {"PATH": os.environ["PATH"], **extra_env}
    for assignment in unit.get("Environment", []):
        k, v = shlex.split(assignment)[0].split("=", 1)
        env[k] = v
    assert env[ENV_ROOT] == str(root)
    writable = [Path(p) for p in shlex.split(unit["ReadWritePaths"][0])]
    before = {p for p in root.rglob("*")}
    started = time.time()
    log = root / "unit-run.log"
    with open(log, "wb") as fh:
        agent = subprocess.Popen(shlex.split(unit["ExecStart"][0]), cwd=shlex.split(unit["WorkingDirectory"][0])[0],
                                 env=env, stdout=fh, stderr=subprocess.STDOUT, preexec_fn=as_user(unit["User"][0]))
    sp = system_paths()

    def status() -> dict:
        try:
            return json.loads(sp.status_file.read_text("utf-8"))["status"]
        except (OSError, ValueError):
            return {}
    try:
        wait_for(lambda: status().get("agent", {}).get("running"), 30, "the agent running as " + OTHER_USER)
        shutil.copy2(sample, watch / sample.name)
        os.chmod(watch / sample.name, 0o644)
        wait_for(lambda: status().get("packages", {}).get("queued") == 1, 40, "the sample packaged by the service user")
    finally:
        agent.send_signal(getattr(signal, unit["KillSignal"][0]))
        rc = agent.wait(int(unit["TimeoutStopSec"][0]))
    assert rc == 0, log.read_text(errors="replace")
    made = [p for p in root.rglob("*") if p not in before and p != log and p != watch / sample.name]
    outside = [p for p in made if not any(w == p or w in p.parents for w in writable)]
    assert made and not outside, outside  # ProtectSystem=strict would have refused these writes
    assert all(owner(p) == OTHER_USER for p in made if not p.is_symlink()), [(p, owner(p)) for p in made]
    assert time.time() - started < 60


def test_default_checker_runs_labedge_check(tmp_path: Path) -> None:
    """What install runs when no checker is given: `labedge check --config` in a child process."""
    bad = tmp_path / "labedge.toml"
    bad.write_text(CONFIG.format(watch=(tmp_path / "gone").as_posix()), "utf-8")
    res = svc.check_config(bad, None)
    assert res.returncode == 2 and "gone" in res.output and "does not exist" in res.output, res.output
    (tmp_path / "gone").mkdir()
    res = svc.check_config(bad, None)
    assert res.returncode == 0 and "is OK" in res.output, res.output


def test_cli_install_refuses_a_bad_config(root: Path) -> None:
    """`labedge service install` itself (default checker, this OS's manager): exit 2, check's words."""
    need_root()
    import sys

    from deploy_helpers import REPO

    src = admin_config(root, root / "missing-folder")
    res = subprocess.run([sys.executable, "-m", "agent", "service", "install", "--config", str(src)],
                         capture_output=True, text=True, cwd=REPO, timeout=60, env={**os.environ, ENV_ROOT: str(root)})
    assert res.returncode == 2, res.stdout + res.stderr
    assert "missing-folder" in res.stderr and "nothing was installed" in res.stderr and "Traceback" not in res.stderr
    assert not system_paths().config_file.exists()
