/**
 * The message the API process logs once it listens. Whatever starts the API waits for it
 * (src/local/processes.ts); a leaf module, so that needs no Express loaded.
 */
export const API_LISTENING = 'api listening';
