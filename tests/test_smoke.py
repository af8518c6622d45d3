from tests.conftest import user_body


def test_create_then_get_user(api):
    created = api.post("/Users", json=user_body("bjensen@example.com"))
    assert created.status_code == 201
    fetched = api.get(f"/Users/{created.json['id']}")
    assert fetched.json["userName"] == "bjensen@example.com"
