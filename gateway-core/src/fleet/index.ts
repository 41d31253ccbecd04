// Cloud-side fleet intelligence: telemetry history, derived policy overlays, persisted state.
export { Ring } from './ring.js';
export { FleetHistory, cellKey, type CarrierSample, type EdgeRecord, type FleetStateDocument, type IngestResult } from './history.js';
export { FileStateStore, MemoryStateStore, type FleetStateStore } from './store.js';
export { FLEET_SOURCES, RecordingSink, type FleetCarrierTier, type Derived, type FleetOverlay, type OverlaySink } from './overlay.js';
export { RULES, cellRule, degradation, degradationRule, speedRule, type CellLesson } from './rules.js';
export { Fleet, type FleetOptions, type FleetStats } from './fleet.js';
export { telemetryService, type TelemetryServiceHandle, type TelemetryServiceOptions, type TelemetryServiceStats } from './service.js';
