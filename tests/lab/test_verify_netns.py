"""`make verify --netns FILE`: a lab's namespace file that can't be read is one line and exit 2."""

from tools.verify.__main__ import main


def test_an_unreadable_namespace_file_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "netns.json"
    bad.write_text("{}")
    outputs = tmp_path / "outputs.json"
    outputs.write_text('{"hosts": {"mta": {"role": "mta", "fqdn": "mta.yourdomain.com", "publicIp": "192.0.2.1",'
                       ' "privateIp": "10.42.1.9", "instanceId": "i-1"}}}')  # fmt: skip
    assert main(["--stack", "prod", "--outputs", str(outputs), "--netns", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a lab's namespace file" in err[0]
