-- Runs a rendered policy under lua5.4 with stand-ins for KumoMTA's `kumo` and `proxy` modules,
-- fires its events the way kumod / proxy-server would, and prints every call as one line:
--   call <function> <key>=<value> ...
-- Usage: lua5.4 kumo_stub.lua POLICY [SOURCE-NAME...]
local handlers = {}

local function flat(prefix, value, out)
  if type(value) == 'table' then
    local keys = {}
    for k in pairs(value) do table.insert(keys, k) end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do flat(prefix .. '.' .. tostring(k), value[k], out) end
  else
    table.insert(out, prefix:sub(2) .. '=' .. tostring(value))
  end
  return out
end

local function recorder(name)
  return function(params)
    print('call ' .. name .. ' ' .. table.concat(flat('', params, {}), ' '))
    return params
  end
end

local kumo = { on = function(event, fn) handlers[event] = fn end }
for _, name in ipairs { 'start_http_listener', 'define_spool', 'configure_local_logs', 'make_queue_config',
  'make_egress_pool', 'make_egress_source', 'make_egress_path' } do
  kumo[name] = recorder('kumo.' .. name)
end
local proxy = {
  start_proxy_listener = recorder('proxy.start_proxy_listener'),
  start_http_listener = recorder('proxy.start_http_listener'),
}
kumo.dkim = {
  rsa_sha256_signer = recorder('kumo.dkim.rsa_sha256_signer'),
  ed25519_signer = recorder('kumo.dkim.ed25519_signer'),
}
-- kumo.aaa.load_acl_map keeps the ACL text; `:get` is what get_acl_definition calls.
kumo.aaa = {
  load_acl_map = function(params)
    print('acl ' .. params.key_data:gsub('\n', '\\n'))
    return { get = function(self, resource) return resource end }
  end,
}
package.preload.kumo = function() return kumo end
package.preload.proxy = function() return proxy end

dofile(arg[1])

for _, event in ipairs { 'init', 'proxy_init' } do
  if handlers[event] then handlers[event]() end
end
if handlers.get_acl_definition then
  print('acl-answers ' .. tostring(handlers.get_acl_definition('http_listener/*/metrics')))
end
if handlers.get_queue_config then
  local queue = handlers.get_queue_config('example.org', nil, nil, nil)
  local pool = handlers.get_egress_pool(queue.egress_pool)
  table.sort(pool.entries, function(a, b) return a.name < b.name end)
  for _, entry in ipairs(pool.entries) do
    handlers.get_egress_source(entry.name)
    handlers.get_egress_path_config('example.org', entry.name, 'site')
  end
  print('unknown-pool ' .. tostring(pcall(handlers.get_egress_pool, 'other')))
  print('unknown-source ' .. tostring(pcall(handlers.get_egress_source, 'other')))
end
-- An injected message from each domain of STUB_FROM: what it is signed with, and its `meta` line.
if handlers.http_message_generated then
  for domain in string.gmatch(os.getenv('STUB_FROM') or 'yourdomain.com,elsewhere.example', '[^,]+') do
    local msg = {
      from_header = function() return { domain = domain } end,
      dkim_sign = function(self, signer) print('signed ' .. domain .. ' ' .. signer.selector) end,
      set_meta = function(self, key, value) print('meta ' .. key .. '=' .. value) end,
    }
    handlers.http_message_generated(msg)
  end
end
