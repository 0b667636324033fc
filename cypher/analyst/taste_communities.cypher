// name: taste_communities
// description: Groups of users with the same taste: users linked to the users whose purchases overlap theirs most (node similarity, Jaccard over products bought), then Louvain communities over those links (Graph Data Science); per community its size and the products most bought in it. The in-memory graph is dropped afterwards.
// param: top_k: int = 10 - most similar users linked to each user
// param: products: int = 5 - products listed per community
// param: limit: int = 20 - at most this many communities, largest first
// group_size: users
// gds_graph: graph
MATCH (u:User)-[:BOUGHT]->(p:Product)
WITH gds.graph.project($graph, u, p, {sourceNodeLabels: labels(u), targetNodeLabels: labels(p)}) AS projected
// SIMILAR links exist only in the in-memory graph (mutate), never in the database.
CALL gds.nodeSimilarity.mutate($graph, {topK: $top_k, mutateRelationshipType: 'SIMILAR', mutateProperty: 'jaccard'})
YIELD relationshipsWritten
CALL gds.louvain.stream($graph, {nodeLabels: ['User'], relationshipTypes: ['SIMILAR'], relationshipWeightProperty: 'jaccard'})
YIELD nodeId, communityId
WITH communityId, collect(gds.util.asNode(nodeId)) AS members
WITH communityId, members, size(members) AS users
ORDER BY users DESC, communityId
LIMIT $limit
CALL (members) {
  UNWIND members AS m
  MATCH (m)-[:BOUGHT]->(p:Product)
  WITH p, count(*) AS buyers
  ORDER BY buyers DESC, p.id
  LIMIT $products
  RETURN collect(coalesce(p.name, p.id)) AS top_products
}
RETURN communityId AS community, users, top_products
ORDER BY users DESC, community
