-- kumod policy for {{ fqdn }}, rendered by kumomta-infra; a redeploy replaces it.
--
-- Messages arrive only through Nginx on the HTTP listener below and leave only through the
-- KumoProxy hosts: every queue uses the pool of SOCKS5 sources, one per proxy.
local kumo = require 'kumo'

local POOL = 'kumoproxy'

-- Proxy addresses are IP literals, as socks5_proxy_server requires in released kumod versions.
local SOURCES = {
{{ sources }}
}

-- DKIM keys by signing domain, oldest first: the newest of each algorithm whose `from` (Unix time)
-- has passed signs, so a new selector can be published before it signs.
local DKIM = {
{{ dkim }}
}
local DKIM_HEADERS = { {{ dkim_headers }} }

kumo.on('init', function()
  -- Loopback only. Every request from 127.0.0.1 is trusted with full admin rights, which is
  -- why Nginx forwards just the two bearer-protected paths.
  kumo.start_http_listener {
    listen = '{{ listen }}',
    trusted_hosts = { '127.0.0.1' },
    -- In step with Nginx's client_max_body_size.
    request_body_limit = {{ body_limit }},
  }

  kumo.define_spool {
    name = 'data',
    path = '{{ spool_dir }}/data',
  }
  kumo.define_spool {
    name = 'meta',
    path = '{{ spool_dir }}/meta',
  }

  kumo.configure_local_logs {
    log_dir = '{{ log_dir }}',
    -- Each record says how its message was signed ('unsigned: ...' counts what left without a key).
    meta = { 'dkim' },
    -- Without it a segment closes only at 1 GB, so a quiet host's log is never readable
    -- (KumoMTA assets/init.lua sets 10s for first setups; a minute keeps the file count low).
    max_segment_duration = '60s',
  }
end)

kumo.on('get_egress_path_config', function(routing_domain, egress_source, site_name)
  local source = SOURCES[egress_source]
  return kumo.make_egress_path {
    -- A source sends from one address family. Looking up only that family's MX addresses keeps
    -- kumod from trying the others and failing them with "address family does not match"
    -- (KumoMTA crates/kumod/src/egress_source.rs; ip_lookup_strategy since 2026.04.09).
    ip_lookup_strategy = (source and source.family == 6) and 'Ipv6Only' or 'Ipv4Only',
  }
end)

-- A changed proxy list reaches the queues within seconds of kumomta-apply writing this file: kumod
-- hashes its policy files every 10 s and starts a new config epoch on a change (KumoMTA
-- docs/reference/configuration.md, "Config Epoch"). With the default strategy (Ttl) a queue only
-- re-reads its configuration once a minute, through a pool cached for another 60 s (make_egress_pool
-- `ttl`), so a new proxy went unused, and a removed one kept being chosen, for up to two minutes
-- (crates/kumod/src/queue/queue.rs perform_config_refresh, crates/kumod/src/egress_source.rs).
local CACHE = '5s'

kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
  return kumo.make_queue_config {
    egress_pool = POOL,
    refresh_strategy = 'Epoch',
  }
end)

kumo.on('get_egress_pool', function(pool_name)
  if pool_name ~= POOL then
    error('no egress pool named ' .. pool_name)
  end
  local entries = {}
  for name in pairs(SOURCES) do
    table.insert(entries, { name = name })
  end
  return kumo.make_egress_pool {
    name = POOL,
    entries = entries,
    ttl = CACHE,
  }
end)

kumo.on('get_egress_source', function(source_name)
  local source = SOURCES[source_name]
  if source == nil then
    error('no egress source named ' .. source_name)
  end
  return kumo.make_egress_source {
    name = source_name,
    socks5_proxy_server = source.server,
    socks5_proxy_source_address = source.source_address,
    ehlo_domain = source.ehlo_domain,
    ttl = CACHE,
  }
end)

kumo.on('http_message_generated', function(msg)
  local from = msg:from_header()
  local domain = from and string.lower(from.domain)
  local chosen = {}
  for _, key in ipairs(DKIM[domain] or {}) do
    if key.from <= os.time() then
      chosen[key.algorithm] = key
    end
  end
  local signed = {}
  for _, algorithm in ipairs { 'rsa', 'ed25519' } do
    local key = chosen[algorithm]
    if key then
      local signer = algorithm == 'rsa' and kumo.dkim.rsa_sha256_signer or kumo.dkim.ed25519_signer
      msg:dkim_sign(signer {
        domain = domain,
        selector = key.selector,
        headers = DKIM_HEADERS,
        key = key.key,
        over_sign = true,
      })
      table.insert(signed, key.selector)
    end
  end
  -- Without a key the message is sent unsigned, not dropped; the logs count it by this meta value.
  msg:set_meta('dkim', #signed > 0 and table.concat(signed, ',') or ('unsigned: no key for ' .. tostring(domain)))
end)
