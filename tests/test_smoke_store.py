from datetime import UTC, datetime

from gql.store.models import Role, User


async def test_user_roundtrip(db: None) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    user = await User.create(name="A", email="a@example.com", role=Role.ADMIN, created_at=at)
    again = await User.get(id=user.id)
    assert again.email == "a@example.com"
    assert again.created_at == at
