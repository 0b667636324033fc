// name: user_neighbourhood
// description: A user's 1- and 2-hop neighbourhood, summarised: how many nodes of each label are reached through which relationship types, with a few names.
// param: user_id: string - id of the user
// param: sample: int = 5 - names listed per row
MATCH (u:User {id: $user_id})
CALL (u) {
  MATCH (u)-[r]-(n)
  RETURN 1 AS hops, type(r) AS via, labels(n)[0] AS label, n
  UNION
  MATCH (u)-[r1]-(m)-[r2]-(n)
  WHERE n <> u
  RETURN 2 AS hops, type(r1) + '/' + type(r2) AS via, labels(n)[0] AS label, n
}
WITH hops, via, label, n ORDER BY n.id
WITH hops, via, label, count(DISTINCT n) AS nodes, collect(DISTINCT coalesce(n.name, n.id)) AS names
RETURN hops, via, label, nodes, names[..$sample] AS sample
ORDER BY hops, nodes DESC, via, label
