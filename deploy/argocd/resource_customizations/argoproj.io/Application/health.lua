-- Argo CD health of an Argo CD Application, for an app of apps whose sync waves must wait
-- for a child Application to be synced and healthy. Argo CD ships no check for this kind.
-- Only Lua's base and table libraries are loaded there, hence no string.*.

local function health(status, message)
  return { status = status, message = message }
end

local status = obj.status
if status == nil or status.health == nil or status.sync == nil then
  return health("Progressing", "Waiting for the Application's first comparison")
end

-- While a sync runs, Argo CD may report the Application Healthy before all of its
-- resources exist; such a report also says OutOfSync, so both are required below.
local operation = status.operationState
if operation ~= nil and operation.phase ~= "Succeeded" then
  if operation.phase == "Failed" or operation.phase == "Error" then
    return health("Degraded", operation.message or "")
  end
  return health("Progressing", "Sync " .. tostring(operation.phase) .. ": " .. (operation.message or ""))
end
if status.sync.status ~= "Synced" then
  return health("Progressing", "Sync status is " .. tostring(status.sync.status))
end
return health(status.health.status, status.health.message or "")
