"""When the soak may restart PostgreSQL, and why it says it skips the restart."""

from soak.pgcluster import find_cluster

URL = "postgres://railfleet:railfleet@127.0.0.1:5432/railfleet"


def test_no_restart_unless_asked(monkeypatch):
    monkeypatch.delenv("SOAK_PG_RESTART", raising=False)
    cluster, why = find_cluster(URL)
    assert cluster is None and "SOAK_PG_RESTART" in why


def test_no_restart_of_a_server_on_another_machine(monkeypatch):
    monkeypatch.setenv("SOAK_PG_RESTART", "1")
    cluster, why = find_cluster("postgres://u:p@db.example.com:5432/railfleet")
    assert cluster is None and "db.example.com" in why


def test_no_restart_when_no_cluster_listens_on_the_port(monkeypatch):
    monkeypatch.setenv("SOAK_PG_RESTART", "1")
    monkeypatch.setattr("soak.pgcluster.shutil.which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr("soak.pgcluster.os.geteuid", lambda: 0)
    listing = "15  main    5432 online postgres /var/lib/postgresql/15/main /var/log/x.log\n"
    monkeypatch.setattr(
        "soak.pgcluster.subprocess.run",
        lambda *args, **kwargs: type("Done", (), {"stdout": listing})(),
    )
    assert find_cluster(URL) == ((("15", "main")), "pg_lsclusters lists 15/main on port 5432")
    cluster, why = find_cluster(URL.replace("5432", "5999"))
    assert cluster is None and "no cluster on port 5999" in why
