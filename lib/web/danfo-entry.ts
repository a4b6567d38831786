// danfojs-node's DataFrame and Series for notebook cells in a browser, on the library's own tfjs (lib/cli/bundle.ts
// maps its tfjs-node there and leaves out its file and network readers).
import * as dfd from "danfojs-node";

export default dfd;
export const { DataFrame, Series, concat, merge, toDateTime, dateRange, getDummies, LabelEncoder, OneHotEncoder, StandardScaler, MinMaxScaler } = dfd;
