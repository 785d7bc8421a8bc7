
-- Metrics for the monitoring networks only. The listener keeps its default trusted_hosts
-- (loopback): the monitoring networks get GET on the metrics through this ACL, and no admin API.
local METRICS_ACL = kumo.aaa.load_acl_map {
  key_data = [=[
{{ acl }}]=],
}

kumo.on('get_acl_definition', function(resource)
  return METRICS_ACL:get(resource)
end)
