"""tar, ls and test in the model's BusyBox (node/tar_applet.py): what kubectl cp runs."""

import io
import tarfile

from k8sbook.node.shell import Process, run


def container() -> tuple[Process, dict[str, str]]:
    files = {"/etc/hostname": "web\n", "/data/a.txt": "A\n", "/data/sub/b.txt": "B\n"}
    readonly = ("/etc/",)

    def write(path: str, text: str) -> bool:
        if path.startswith(readonly):
            return False
        files[path] = text
        return True
    return Process(files=files.get, write=write, paths=lambda: sorted(files)), files


def members(archive: str) -> dict[str, bytes]:
    data = archive.encode("utf-8", "surrogateescape")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_tar_create_of_a_file_and_a_directory():
    proc, _ = container()
    r = run(["tar", "cf", "-", "/data"], proc)
    assert r.exit_code == 0
    assert r.stderr == "tar: removing leading '/' from member names\n"
    assert members(r.stdout) == {"data/a.txt": b"A\n", "data/sub/b.txt": b"B\n"}
    missing = run(["tar", "cf", "-", "/nope"], proc)
    assert missing.exit_code == 1 and "tar: /nope: No such file or directory" in missing.stderr


def test_tar_extract_writes_the_files_and_refuses_read_only_mounts():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("notes.txt", b"hello\n"), ("bin.dat", bytes(range(256)))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = buf.getvalue().decode("utf-8", "surrogateescape")
    proc, files = container()
    argv = ["tar", "--no-same-permissions", "--no-same-owner", "-xmf", "-", "-C", "/tmp"]
    assert run(argv, proc, stdin=archive).exit_code == 0
    assert files["/tmp/notes.txt"] == "hello\n"
    assert files["/tmp/bin.dat"].encode("utf-8", "surrogateescape") == bytes(range(256))
    r = run(["tar", "-xmf", "-", "-C", "/etc"], proc, stdin=archive)
    assert r.exit_code == 1 and "Read-only file system" in r.stderr
    assert run(["tar", "-xmf", "-"], proc, stdin="not a tar").stderr == "tar: short read\n"


def test_ls_and_test():
    proc, _ = container()
    assert run(["ls", "/data"], proc).stdout == "a.txt\nsub\n"
    r = run(["ls", "/nope"], proc)
    assert (r.stderr, r.exit_code) == ("ls: /nope: No such file or directory\n", 1)
    assert run(["test", "-d", "/data/sub"], proc).exit_code == 0
    assert run(["test", "-d", "/data/a.txt"], proc).exit_code == 1
    assert run(["test", "-f", "/data/a.txt"], proc).exit_code == 0
    assert run(["test", "-e", "/missing"], proc).exit_code == 1


def test_ls_on_a_terminal_lays_names_out_in_columns():
    from k8sbook.node.shell import Process, run

    files = {f"/d/{n}": "x" for n in ("ca.crt", "namespace", "token", "a", "bb")}
    proc = Process(files=files.get, paths=lambda: sorted(files))
    assert run(["ls", "/d"], proc).output == "a\nbb\nca.crt\nnamespace\ntoken\n"  # a pipe
    wide = Process(files=files.get, paths=lambda: sorted(files), winsize=lambda: (24, 80))
    assert run(["ls", "/d"], wide).output == "a          bb         ca.crt     namespace  token\n"
    narrow = Process(files=files.get, paths=lambda: sorted(files), winsize=lambda: (24, 30))
    # two columns of 11 fit in 30; filled top to bottom
    assert run(["ls", "/d"], narrow).output == "a          namespace\nbb         token\nca.crt\n"
