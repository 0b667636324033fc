// name: influencers
// description: Users at the centre of the friend graph of buyers: PageRank over friendships (Graph Data Science), weighted by purchases: a user passes rank to each friend in proportion to 1 + that friend's purchases, so friends who buy count more. The in-memory graph is dropped afterwards.
// param: damping: float = 0.85 - PageRank's damping factor (0 to 1)
// param: limit: int = 20 - at most this many rows
// group_size: friends
// gds_graph: graph
// Each friendship is matched in both directions, so PageRank sees it as undirected.
// (Weights by products both friends bought cost a minute on Last.fm; the friend's purchases are a count.)
MATCH (a:User)-[:FRIEND]-(b:User)
WITH gds.graph.project($graph, a, b, {relationshipProperties: {weight: 1.0 + COUNT { (b)-[:BOUGHT]->(:Product) }}}) AS projected
CALL gds.pageRank.stream($graph, {relationshipWeightProperty: 'weight', dampingFactor: $damping})
YIELD nodeId, score
WITH gds.util.asNode(nodeId) AS u, score
ORDER BY score DESC, u.id
LIMIT $limit
RETURN u.id AS user_id, u.name AS name, round(score, 4) AS pagerank,
       COUNT { (u)-[:FRIEND]-(:User) } AS friends, COUNT { (u)-[:BOUGHT]->(:Product) } AS purchases
