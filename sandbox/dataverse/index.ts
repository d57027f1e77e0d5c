export { startDataverseEmulator, type DataverseChangeTracking, type DataverseEmulator, type DataverseEmulatorOptions, type WebApiRequestFilter } from './emulator.ts'
export type { DataverseFaults, DataverseFaultState } from './faults.ts'
export type { DataverseRecord, DataverseRecordStore } from './record-store.ts'
export { DataverseError } from './dataverse-error.ts'
