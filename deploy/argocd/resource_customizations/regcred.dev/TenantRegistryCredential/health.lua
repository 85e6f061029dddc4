-- Argo CD health of a regcred.dev TenantRegistryCredential: its status has the same
-- conditions as a RegistryCredential's, so the check is the same script.
-- Argo CD sets the global `obj` to the object and reads `status` and `message` from the
-- table returned. Only Lua's base and table libraries are loaded there, hence no string.*.

local function condition_named(conditions, wanted)
  for _, condition in ipairs(conditions or {}) do
    if condition.type == wanted then
      return condition
    end
  end
  return nil
end

local function health(status, message)
  return { status = status, message = message }
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  return health("Progressing", "Waiting for the operator to report status")
end

-- A status written for an older spec says nothing about the current one.
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  return health("Progressing", "Waiting for the operator to observe generation "
    .. tostring(generation) .. " (status is for " .. tostring(status.observedGeneration) .. ")")
end

local ready = condition_named(status.conditions, "Ready")
if ready == nil then
  return health("Progressing", "Waiting for the Ready condition")
end
if ready.status == "True" then
  return health("Healthy", ready.message)
end
-- Syncing (Ready False): copies are still being written and nothing has failed.
if ready.status == "Unknown" or ready.reason == "Syncing" then
  return health("Progressing", ready.message)
end

local message = ready.message
local source = condition_named(status.conditions, "SourceValid")
if source ~= nil and source.status == "False" then
  -- Ready only says the sources are invalid; SourceValid says which and why.
  message = message .. ": " .. source.message
end
return health("Degraded", message)
