// name: segment_size_by_community
// description: Social segments for campaign audiences: communities of the friend graph (Leiden, Graph Data Science), largest first, with each one's size, its share of the users who have friends, the friendships inside it, purchases per member and its most bought primary category. The in-memory graph is dropped afterwards.
// param: min_users: int = 10 - only communities of at least this many users
// param: limit: int = 25 - at most this many rows
// group_size: users
// gds_graph: graph
MATCH (a:User)-[:FRIEND]->(b:User)
WITH gds.graph.project($graph, a, b, {}, {undirectedRelationshipTypes: ['*']}) AS projected
CALL gds.leiden.stream($graph, {randomSeed: 42, concurrency: 1})
YIELD nodeId, communityId
WITH communityId, collect(gds.util.asNode(nodeId)) AS members
WITH collect({community: communityId, members: members}) AS communities, sum(size(members)) AS everyone
UNWIND communities AS c
WITH c.community AS community, c.members AS members, size(c.members) AS users, everyone
WHERE users >= $min_users
ORDER BY users DESC, community
LIMIT $limit
CALL (members) {
  UNWIND members AS m
  OPTIONAL MATCH (m)-[:FRIEND]->(f:User) WHERE f IN members
  RETURN count(f) AS friendships_inside
}
CALL (members) {
  UNWIND members AS m
  OPTIONAL MATCH (m)-[:BOUGHT]->(p:Product)
  RETURN count(p) AS purchases
}
CALL (members) {
  UNWIND members AS m
  MATCH (m)-[:BOUGHT]->(:Product)-[:IN_CATEGORY {primary: true}]->(cat:Category)
  WITH cat, count(*) AS n
  ORDER BY n DESC, cat.id
  LIMIT 1
  RETURN collect(coalesce(cat.name, cat.id))[0] AS top_category
}
RETURN community, users, round(toFloat(users) / everyone, 4) AS share, friendships_inside,
       round(toFloat(purchases) / users, 1) AS purchases_per_user, top_category
