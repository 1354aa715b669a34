"""Contact groups and group sends, scoped to their wallet."""

from __future__ import annotations

from typing import Any

from tests.platform.client import Customer, eventually
from tests.platform.conftest import Platform


async def _group(customer: Customer, title: str = "Customers") -> dict[str, Any]:
    reply = await customer.request(
        "POST", "/api/v1/groups", json={"walletId": customer.wallet_id, "title": title}
    )
    assert reply.status == 201, reply
    return reply.body


async def _add(customer: Customer, group_id: str, contacts: list[dict[str, Any]]) -> Any:
    return await customer.request(
        "POST",
        f"/api/v1/groups/{group_id}/contacts",
        json={"walletId": customer.wallet_id, "contacts": contacts},
    )


async def test_groups_are_created_listed_and_filled(customer: Customer) -> None:
    group = await _group(customer, "Kampala shops")
    assert group["id"].startswith("grp_")
    assert (group["title"], group["contactCount"], group["description"]) == (
        "Kampala shops",
        0,
        None,
    )
    added = await _add(
        customer,
        group["id"],
        [
            {"phone": "0772123456", "name": "Amina"},
            {"phone": "+256772123456"},  # the same number in another form
            {"phone": "0701234567"},
        ],
    )
    assert added.status == 200, added
    assert added.body == {"added": 2, "skipped": 1, "contactCount": 2}
    again = await _add(customer, group["id"], [{"phone": "0701234567"}, {"phone": "0752123456"}])
    assert again.body == {"added": 1, "skipped": 1, "contactCount": 3}
    listed = await customer.request(
        "GET", "/api/v1/groups", params={"walletId": customer.wallet_id}
    )
    assert [(g["id"], g["contactCount"]) for g in listed.body["data"]] == [(group["id"], 3)]


async def test_bad_contacts_add_nothing(customer: Customer) -> None:
    group = await _group(customer)
    reply = await _add(customer, group["id"], [{"phone": "0772123456"}, {"phone": "0414123456"}])
    assert (reply.status, reply.code) == (422, "validation_failed")
    assert reply.body["error"]["details"][0]["field"] == "contacts.1.phone"
    listed = await customer.request(
        "GET", "/api/v1/groups", params={"walletId": customer.wallet_id}
    )
    assert listed.body["data"][0]["contactCount"] == 0


async def test_group_titles_are_validated(customer: Customer) -> None:
    for title in ("", "   ", "x" * 121):
        reply = await customer.request(
            "POST", "/api/v1/groups", json={"walletId": customer.wallet_id, "title": title}
        )
        assert (reply.status, reply.code) == (422, "validation_failed"), title


async def test_another_wallets_group_is_forbidden_and_unknown_groups_are_not_found(
    platform: Platform, customer: Customer
) -> None:
    other = await platform.customer()
    theirs = await _group(other)
    reply = await _add(customer, theirs["id"], [{"phone": "0772123456"}])
    assert (reply.status, reply.code) == (403, "wallet_forbidden")
    reply = await customer.request(
        "POST",
        "/api/v1/sms/group",
        json={"walletId": customer.wallet_id, "groupId": theirs["id"], "message": "hi"},
    )
    assert (reply.status, reply.code) == (403, "wallet_forbidden")
    reply = await _add(customer, "grp_unknown", [{"phone": "0772123456"}])
    assert (reply.status, reply.code) == (404, "not_found")
    reply = await customer.request(
        "POST",
        "/api/v1/sms/group",
        json={"walletId": customer.wallet_id, "groupId": "grp_unknown", "message": "hi"},
    )
    assert (reply.status, reply.code) == (404, "not_found")
    assert await customer.balance() == 10_000


async def test_a_group_send_reaches_every_contact(platform: Platform, customer: Customer) -> None:
    group = await _group(customer)
    await _add(customer, group["id"], [{"phone": "0772555001"}, {"phone": "0701555002"}])
    reply = await customer.request(
        "POST",
        "/api/v1/sms/group",
        json={"walletId": customer.wallet_id, "groupId": group["id"], "message": "Sale today"},
    )
    assert reply.status == 202, reply
    assert sorted(m["recipient"] for m in reply.body["messages"]) == [
        "+256701555002",
        "+256772555001",
    ]
    assert reply.body["cost"] == 70

    async def delivered() -> bool:
        return (await customer.counts(reply.body["batchId"]))["delivered"] == 2

    await eventually(delivered)


async def test_an_empty_group_cannot_be_sent_to(customer: Customer) -> None:
    group = await _group(customer)
    reply = await customer.request(
        "POST",
        "/api/v1/sms/group",
        json={"walletId": customer.wallet_id, "groupId": group["id"], "message": "hi"},
    )
    assert (reply.status, reply.code) == (422, "validation_failed")


async def test_large_group_sends_leave_the_message_list_out(platform: Platform) -> None:
    customer = await platform.customer(credit=100_000)
    group = await _group(customer)
    contacts = [{"phone": f"07723{n:05d}"} for n in range(1_001)]
    assert (await _add(customer, group["id"], contacts)).body["contactCount"] == 1_001
    reply = await customer.request(
        "POST",
        "/api/v1/sms/group",
        json={"walletId": customer.wallet_id, "groupId": group["id"], "message": "Campaign"},
    )
    assert reply.status == 202, reply
    assert "messages" not in reply.body
    assert (reply.body["recipients"], reply.body["cost"]) == (1_001, 1_001 * 35)
