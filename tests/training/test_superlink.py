import tomllib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from training import superlink as sl


def test_certs_are_created_once_with_localhost_sans(tmp_path):
    # when
    paths = sl.ensure_certs(tmp_path / "certs")
    first = paths["server_cert"].read_bytes()
    again = sl.ensure_certs(tmp_path / "certs")
    # then
    assert again["server_cert"].read_bytes() == first
    cert = x509.load_pem_x509_certificate(first)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    ca = x509.load_pem_x509_certificate(paths["ca_cert"].read_bytes())
    cert.verify_directly_issued_by(ca)
    assert oct(paths["ca_key"].stat().st_mode & 0o777) == "0o600"


def test_adding_a_public_hostname_reissues_the_server_cert_from_the_same_ca(tmp_path):
    # given: certificates for localhost only, and the CA a participant already copied
    first = sl.ensure_certs(tmp_path / "certs")
    ca_before = first["ca_cert"].read_bytes()
    # when: the platform gets a public name and address
    paths = sl.ensure_certs(tmp_path / "certs", ("127.0.0.1", "localhost", "fl.example.org", "203.0.113.7"))
    # then: a new server certificate naming them, issued by the unchanged CA
    assert paths["ca_cert"].read_bytes() == ca_before
    cert = x509.load_pem_x509_certificate(paths["server_cert"].read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_before))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "fl.example.org" in sans.get_values_for_type(x509.DNSName)
    assert "203.0.113.7" in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    # and: asking again for a subset changes nothing
    again = sl.ensure_certs(tmp_path / "certs", ("localhost",))
    assert again["server_cert"].read_bytes() == paths["server_cert"].read_bytes()


def test_node_key_is_p384_openssh(tmp_path):
    private, public = sl.generate_node_key(tmp_path / "node")
    key = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    assert key.curve.name == "secp384r1"
    assert public.read_text().startswith("ecdsa-sha2-nistp384 ")


def test_connection_config_keeps_other_connections(tmp_path):
    # given
    (tmp_path / "config.toml").write_text(
        '[superlink]\ndefault = "x"\n[superlink.x]\naddress = "a:1"\ninsecure = true\n'
    )
    # when
    sl.write_connection(tmp_path, "127.0.0.1:9093", tmp_path / "ca.crt")
    # then
    conf = tomllib.loads((tmp_path / "config.toml").read_text())
    assert conf["superlink"]["default"] == "bcfl"
    assert conf["superlink"]["bcfl"] == {
        "address": "127.0.0.1:9093",
        "root-certificates": str(tmp_path / "ca.crt"),
    }
    assert conf["superlink"]["x"]["insecure"] is True


def test_superlink_command_line(tmp_path):
    link = sl.SuperLink(var_dir=tmp_path, address="127.0.0.1:9999")
    cmd = link.command()
    assert "--enable-supernode-auth" in cmd and "--disable-runtime-dependency-installation" in cmd
    assert "--database" not in cmd  # state in memory: the platform re-registers nodes after a restart
    persistent = sl.SuperLink(var_dir=tmp_path, address="127.0.0.1:9999", database="/x/s.db").command()
    assert persistent[persistent.index("--database") + 1] == "/x/s.db"
    assert cmd[cmd.index("--port") + 1] == "9999" and "--insecure" not in cmd
    assert link.flwr_home == tmp_path / "flwr" and sl.DEFAULT_ADDRESS == "127.0.0.1:9093"


@pytest.mark.parametrize(
    ("config", "text"),
    [
        ({"partition-id": 0, "num-partitions": 3}, "partition-id=0 num-partitions=3"),
        (
            {"lr": 0.05, "records-path": "/tmp/a b.jsonl", "flag": True},
            'lr=0.05 records-path="/tmp/a b.jsonl" flag=true',
        ),
    ],
)
def test_format_config(config, text):
    assert sl.format_config(config) == text


def test_last_json_skips_noise():
    assert sl._last_json('noise\n{"success": true, "run-id": 5}') == {"success": True, "run-id": 5}
    assert sl._last_json("") is None


def test_run_unknown_to_the_superlink_is_told_apart_from_a_superlink_that_does_not_answer(
    tmp_path, monkeypatch
):
    link = sl.SuperLink(var_dir=tmp_path / "var", address="127.0.0.1:1", flwr_home=tmp_path / "home")
    answers = {
        "gone": sl.FlowerError(
            "flwr ls failed (exit 1): Displaying information for run ID 7...\n[code: 16] Run ID not found."
        ),
        "down": sl.FlowerError("flwr ls failed (exit 1): failed to connect to all addresses"),
    }

    state = {}

    def flwr_json(*args, **kwargs):
        if state["answer"] == "empty":
            return {"success": True, "runs": []}
        raise answers[state["answer"]]

    monkeypatch.setattr(link, "flwr_json", flwr_json)
    for state["answer"] in ("gone", "empty"):
        with pytest.raises(sl.RunNotFound, match="does not know Flower run 7"):
            link.run_status(7)
    state["answer"] = "down"
    with pytest.raises(sl.FlowerError) as info:
        link.run_status(7)
    assert not isinstance(info.value, sl.RunNotFound)


def test_client_never_imports_the_platform_superlink():
    """The participant's side (CLI, library, SuperNode starter, launcher) needs neither the platform's
    SuperLink module nor Django: the process helpers both use live in training.client.procs."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import training.client.cli, training.client.participant, training.client.supernode\n"
        "import training.client.launcher\n"
        "print(sorted(m for m in sys.modules if m in ('training.superlink', 'training.certs') or m.startswith('django')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_superlink_reexports_the_shared_process_helpers():
    from training.client import procs

    assert sl.free_port is procs.free_port
    assert sl.stop_process is procs.stop_process
    assert issubclass(sl.RunNotFound, procs.FlowerError)
    assert sl.FlowerError is procs.FlowerError
