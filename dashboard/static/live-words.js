// Words of live view (live-view.js), for every page that shows a camera live. Data only.
import { addWords } from "./i18n.js";

addWords({
  zh: {
    "live.open": "实时画面",
    "live.close": "关闭实时画面",
    "live.starting": "正在连接摄像头…",
    "live.playing": "实时",
    "live.offline": "摄像头离线",
    "live.limit": "观看人数已满",
    "live.error": "无法播放",
    "live.transcoded": "（已转码）",
  },
  en: {
    "live.open": "Live",
    "live.close": "Close live view",
    "live.starting": "Connecting to the camera…",
    "live.playing": "Live",
    "live.offline": "Camera offline",
    "live.limit": "Viewer limit reached",
    "live.error": "Cannot play",
    "live.transcoded": " (transcoded)",
  },
});
