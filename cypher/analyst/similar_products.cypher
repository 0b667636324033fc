// name: similar_products
// description: Products bought by the same people: node similarity of products over their buyers (Jaccard, Graph Data Science), for one product or, without product_id, the most similar pairs of the catalogue. The in-memory graph is dropped afterwards.
// param: product_id: string = null - only products similar to this one (default: the top pairs overall)
// param: min_buyers: int = 10 - only products with at least this many buyers
// param: top_k: int = 10 - most similar products kept per product
// param: limit: int = 20 - at most this many rows
// group_size: common_buyers
// gds_graph: graph
// Projected from product to buyer, so that products are compared by the users who bought them.
MATCH (u:User)-[:BOUGHT]->(p:Product)
WITH gds.graph.project($graph, p, u, {sourceNodeLabels: labels(p), targetNodeLabels: labels(u)}) AS projected
CALL gds.nodeSimilarity.stream($graph, {topK: $top_k, degreeCutoff: $min_buyers})
YIELD node1, node2, similarity
WITH gds.util.asNode(node1) AS a, gds.util.asNode(node2) AS b, similarity
WHERE CASE WHEN $product_id IS NULL THEN a.id < b.id ELSE a.id = $product_id END
WITH a, b, similarity
ORDER BY similarity DESC, a.id, b.id
LIMIT $limit
RETURN a.id AS product_id, a.name AS product, b.id AS similar_id, b.name AS similar, round(similarity, 4) AS jaccard,
       COUNT { (a)<-[:BOUGHT]-(:User)-[:BOUGHT]->(b) } AS common_buyers
