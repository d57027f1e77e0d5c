export { startAzureAdEmulator, type AzureAdEmulator, type AzureAdEmulatorOptions } from './emulator.ts'
export type { RegisteredClient } from './client-authentication.ts'
