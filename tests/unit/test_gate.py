"""The credential gate: cleanup waits for admitted work, and nothing is admitted after it began."""

from __future__ import annotations

from regcred.controller.gate import CredentialGate


def test_cleanup_waits_for_admitted_work_and_refuses_new_work_for_that_uid():
    gate = CredentialGate()
    assert gate.enter("c", "uid-1")
    assert not gate.close("c", "uid-1"), "work admitted before the close is still running"
    assert not gate.enter("c", "uid-1"), "nothing is admitted once cleanup began"
    assert gate.enter("c", "uid-2"), "a credential re-created under the same name is another uid"
    gate.leave("c")
    gate.leave("c")
    assert gate.close("c", "uid-1")


def test_a_waiter_asking_again_joins_the_running_pass_and_a_failed_pass_runs_again():
    gate = CredentialGate()
    done, new_pass = gate.request_cleanup("c", "uid-1")
    assert new_pass
    again, new_pass = gate.request_cleanup("c", "uid-1")
    assert again is done and not new_pass
    gate.report_cleanup("c", "uid-1", ["ns-a: unavailable"])
    assert done.is_set() and gate.cleanup_failures("c") == ["ns-a: unavailable"]
    retry, new_pass = gate.request_cleanup("c", "uid-1")
    assert new_pass and not retry.is_set()


def test_a_report_for_another_uid_is_not_taken_and_forget_reopens_the_name():
    gate = CredentialGate()
    done, _ = gate.request_cleanup("c", "uid-2")
    gate.report_cleanup("c", "uid-1", [])
    assert not done.is_set()
    gate.close("c", "uid-2")
    gate.forget("c", "uid-2")
    assert gate.enter("c", "uid-2")
    assert gate.requested_uid("c") is None
