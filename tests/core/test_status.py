"""core/status.py: the Status objects of ``k8s.io/apimachinery/pkg/api/errors``."""

from k8sbook.core.status import generic_server_response


def test_generic_server_response_keeps_a_403_body_and_names_what_was_asked():
    err = generic_server_response(403, "", "pods/log", "", "web", "Forbidden (x)\n")
    assert err.status == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                          "status": "Failure", "message": "Forbidden (x)\n ( pods/log web)",
                          "reason": "Forbidden", "code": 403,
                          "details": {"name": "web", "kind": "pods/log"}}


def test_generic_server_response_replaces_other_bodies_with_the_code_s_words():
    assert str(generic_server_response(404, "GET", "pods", "", "web", "nope")) == (
        "the server could not find the requested resource (get pods web)")
    assert str(generic_server_response(401, "", "pods/log", "", "", "Unauthorized")) == (
        "the server has asked for the client to provide credentials ( pods/log)")
    bad_gateway = generic_server_response(502, "", "", "", "", 'no "upstream"')
    assert (bad_gateway.reason, str(bad_gateway)) == (
        "InternalError", ('an error on the server ("no \\"upstream\\"") has prevented the '
                         "request from succeeding"))
    teapot = generic_server_response(418, "", "", "", "", "")
    assert (teapot.reason, str(teapot)) == (
        "", ("the server responded with the status code 418 but did not return more "
            "information"))
    assert "reason" not in teapot.status
