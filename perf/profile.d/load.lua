-- perf/profile.d/load.lua: the request mix perf/profile drives ringlet with (wrk).
--
--   wrk -t1 -c64 -d10s -s load.lua http://127.0.0.1:PORT -- MODE FIRST_ID LAST_ID
--
-- MODE: get     GET /v1/items/{id}, id uniform in [FIRST_ID, LAST_ID]
--       post    POST /v1/items with {"name":"x","data":{"k":1}}
--       put     PUT /v1/items/{id} (no If-Match: unconditional) with a new body
--       mixed   80% get, 10% post, 10% put
--       healthz GET /healthz (no database work: the loop, llhttp and the kernel)
-- Every response that is not 2xx/3xx is counted by wrk ("Non-2xx or 3xx").

local mode, first, last = "get", 1, 1
local post_body = '{"name":"x","data":{"k":1}}'
local put_body = '{"name":"y","data":{"k":2,"tags":["a","b"]}}'
local json = { ["Content-Type"] = "application/json" }
local get_req, post_req, health_req

function init(args)
  mode = args[1] or "get"
  first = tonumber(args[2] or "1")
  last = tonumber(args[3] or tostring(first))
  if last < first then last = first end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  post_req = wrk.format("POST", "/v1/items", json, post_body)
  health_req = wrk.format("GET", "/healthz")
end

local function get()
  return wrk.format("GET", "/v1/items/" .. math.random(first, last))
end

local function put()
  return wrk.format("PUT", "/v1/items/" .. math.random(first, last), json, put_body)
end

function request()
  if mode == "get" then
    return get()
  elseif mode == "post" then
    return post_req
  elseif mode == "put" then
    return put()
  elseif mode == "healthz" then
    return health_req
  else -- mixed
    local r = math.random(100)
    if r <= 80 then return get() elseif r <= 90 then return post_req else return put() end
  end
end
