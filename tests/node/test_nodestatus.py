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


def test_node_status_is_written_when_it_changes_not_for_heartbeats(node_a):
    """``nodeStatusHasChanged`` ignores the conditions' heartbeat times: every 10 s the
    kubelet computes its status and PATCHes it only when something else moved (or after
    ``nodeStatusReportFrequency``); the Lease is renewed every 10 s all the same."""
    c, k = node_a

    def status_patches(since):
        return [x for x in c.trace.since(since) if x.resource == "nodes/status"
                and x.verb == "PATCH" and x.src == "kubelet/node-a"]
    m = c.trace.mark()
    c.run_for(60)
    assert status_patches(m) == []
    assert len([x for x in c.trace.since(m) if x.resource == "leases"
                and x.verb == "UPDATE"]) == 6
    k.images.add("registry.k8s.io/pause:3.10")
    m = c.trace.mark()
    c.run_for(10)
    assert len(status_patches(m)) == 1
    images = c.admin().get("nodes", "node-a")["status"]["images"]
    assert {"names": ["registry.k8s.io/pause:3.10"], "sizeBytes": 0} in images
