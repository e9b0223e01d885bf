"""Registration, NodeStatus and the node Lease (pkg/kubelet/nodestatus, nodelease)."""


def test_node_status_reports_the_ipam_address_and_images(node_a):
    c, _ = node_a
    node = c.admin().get("nodes", "node-a")
    assert {a["type"]: a["address"] for a in node["status"]["addresses"]} == {
        "InternalIP": c.ipam.node_ip("node-a"), "Hostname": "node-a"}
    assert node["spec"]["podCIDR"] == c.ipam.pod_cidr("node-a")
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250


def test_an_isolated_kubelet_stops_renewing(node_a):
    c, _ = node_a
    c.network.isolate("kubelet/node-a")
    m = c.trace.mark()
    c.run_for(30)
    renewals = [x for x in c.trace.since(m) if x.resource == "leases"]
    assert renewals and {x.result for x in renewals} == {"i/o timeout"}
