-- KumoProxy policy for {{ fqdn }}, rendered by kumomta-infra; a redeploy replaces it.
local kumo = require 'kumo'
local proxy = require 'proxy'

-- Written at first boot by kumoproxy-address: the private address the MTAs connect to.
local LISTEN_IP = os.getenv 'KUMOPROXY_LISTEN_IP'
if LISTEN_IP == nil or LISTEN_IP == '' then
  error 'KUMOPROXY_LISTEN_IP is not set; see {{ env_file }}'
end
if LISTEN_IP:find(':', 1, true) then
  LISTEN_IP = '[' .. LISTEN_IP .. ']'
end

kumo.on('proxy_init', function()
  proxy.start_proxy_listener {
    listen = LISTEN_IP .. ':{{ socks_port }}',
  }{{ metrics_listener }}
end)
{{ metrics_acl }}
