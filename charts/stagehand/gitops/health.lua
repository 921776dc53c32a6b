-- Argo CD health check for Stagehand kinds (LambdaStage, SpotFleet, StaticSite).
-- Argo CD treats unknown groups as Healthy, so without this a failing stage looks green.
-- Install: see argocd-cm.yaml next to this file (same script for the three kinds).
local hs = { status = "Progressing", message = "Waiting for Stagehand to reconcile" }

local annotations = (obj.metadata or {}).annotations or {}
if annotations["stagehand.dev/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "Paused: the stagehand.dev/paused annotation is set"
  return hs
end

local status = obj.status
if status == nil then
  return hs
end
if status.observedGeneration == nil or status.observedGeneration ~= obj.metadata.generation then
  hs.message = "Stagehand has not yet observed generation " .. tostring(obj.metadata.generation)
  return hs
end

local conditions = {}
for _, condition in ipairs(status.conditions or {}) do
  conditions[condition.type] = condition
end
local function describe(condition)
  local text = condition.reason or ""
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end

local stalled = conditions["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end
local reconciling = conditions["Reconciling"]
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
  return hs
end
local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
if ready ~= nil and ready.status == "False" then
  -- Converged as far as Stagehand may go, but not as declared: failed validation, or drift
  -- reported in ObserveOnly mode.
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end
return hs
