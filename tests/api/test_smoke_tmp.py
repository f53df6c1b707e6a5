from tests.api.conftest import GraphQLClient, World


async def test_viewer(gql: GraphQLClient, world: World) -> None:
    data = await gql.data("{ viewer { id name role manager { name } } }", token=world.learner.token)
    assert data["viewer"]["name"] == "Lea Learner"
    assert data["viewer"]["manager"] == {"name": "Max Manager"}
