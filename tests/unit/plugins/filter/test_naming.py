"""bpffs_dir and proxy_dir (plugins/filter/naming.py): a host's default directories."""

from ansible_collections.palisade.ebpf.plugins.filter.naming import FilterModule


def test_default_directories_are_per_host_and_lab_prefix():
    filters = FilterModule().filters()
    assert sorted(filters) == ["bpffs_dir", "proxy_dir"]
    assert filters["bpffs_dir"]("node1", "lab") == "/sys/fs/bpf/palisade/lab-node1"
    assert filters["proxy_dir"]("node1", "lab") == "/var/lib/palisade/lab-node1/l7proxy"
