
-- Metrics for the monitoring networks only: they get GET on the metrics through this ACL, and no admin
-- API; the listener trusts no host at all.
local METRICS_ACL = kumo.aaa.load_acl_map {
  key_data = [=[
{{ acl }}]=],
}

kumo.on('get_acl_definition', function(resource)
  return METRICS_ACL:get(resource)
end)
