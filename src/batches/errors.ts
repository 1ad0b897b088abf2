import { SwitchyardError } from '../errors';

/** One reason a batch file was refused; a problem of the file as a whole (its size, no lines at all) has no line. */
export interface BatchLineError {
  /** 1-based, as an editor counts the file's lines, blank ones included. */
  line?: number;
  message: string;
}

/** The batch file was refused as a whole: nothing of it was kept, and no batch was created. */
export class BatchFileRejectedError extends SwitchyardError {
  override readonly name = 'BatchFileRejectedError';
  readonly code = 'batch-file-rejected';
  /**
   * @param errors the first errors, in file order
   * @param errorCount every error found, also those past `errors`
   * @param lines the lines read (0 when the file was refused before it was read)
   */
  constructor(
    readonly errors: BatchLineError[],
    readonly errorCount: number,
    readonly lines: number,
  ) {
    const first = errors[0];
    const where = first?.line === undefined ? '' : `line ${first.line}: `;
    super(`The batch file has ${errorCount} error${errorCount === 1 ? '' : 's'}; the first: ${where}${first?.message ?? 'unknown'}`);
  }

  /** The file is over `maxBytes`: refused whole, like any other file error, before or while it is read. */
  static tooLarge(maxBytes: number): BatchFileRejectedError {
    return new BatchFileRejectedError([{ message: `the file is over the limit of ${maxBytes} bytes (SWITCHYARD_BATCH_MAX_BYTES)` }], 1, 0);
  }
}
