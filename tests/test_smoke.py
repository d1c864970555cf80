from tests.support import as_key, as_user


def test_member_listing_through_session_and_key(app, world):
    me = as_user(app, world, "a_admin")
    r = me.get("/members")
    assert r.status_code == 200, r.get_json()
    emails = {m["user"]["email"] for m in r.get_json()["items"]}
    assert "a.admin@people.example.com" in emails
    assert "b.admin@people.example.com" not in emails
    r = as_key(app, world, "a_admin").get("/members")
    assert r.status_code == 200, r.get_json()
