/**
 * Static catalog of metro regions where GPU clouds and CDNs have data-centre presence.
 *
 * - `id` is the lowercase IATA code of the metro's main airport and is unique.
 * - `country` is ISO 3166-1 alpha-2; `subdivision` (when present) is a full ISO 3166-2 code,
 *   given wherever law or data residency may depend on it.
 * - `lat` / `lon` are city-centre coordinates in decimal degrees (west and south negative).
 *
 * Havana (CU), Pyongyang (KP), Simferopol (UA-43) and Donetsk (UA-14) are included on purpose
 * so that sanctions policies can be exercised.
 */

export type Continent = "AF" | "AS" | "EU" | "NA" | "SA" | "OC";

export interface Region {
  readonly id: string;
  readonly city: string;
  readonly country: string;
  readonly subdivision?: string;
  readonly lat: number;
  readonly lon: number;
  readonly continent: Continent;
}

export const REGIONS: readonly Region[] = [
  // ---------------------------------------------------------------- North America
  { id: "iad", city: "Ashburn", country: "US", subdivision: "US-VA", lat: 39.0438, lon: -77.4874, continent: "NA" },
  { id: "jfk", city: "New York", country: "US", subdivision: "US-NY", lat: 40.7128, lon: -74.006, continent: "NA" },
  { id: "bos", city: "Boston", country: "US", subdivision: "US-MA", lat: 42.3601, lon: -71.0589, continent: "NA" },
  { id: "atl", city: "Atlanta", country: "US", subdivision: "US-GA", lat: 33.749, lon: -84.388, continent: "NA" },
  { id: "mia", city: "Miami", country: "US", subdivision: "US-FL", lat: 25.7617, lon: -80.1918, continent: "NA" },
  { id: "ord", city: "Chicago", country: "US", subdivision: "US-IL", lat: 41.8781, lon: -87.6298, continent: "NA" },
  { id: "msp", city: "Minneapolis", country: "US", subdivision: "US-MN", lat: 44.9778, lon: -93.265, continent: "NA" },
  { id: "dfw", city: "Dallas", country: "US", subdivision: "US-TX", lat: 32.7767, lon: -96.797, continent: "NA" },
  { id: "iah", city: "Houston", country: "US", subdivision: "US-TX", lat: 29.7604, lon: -95.3698, continent: "NA" },
  { id: "den", city: "Denver", country: "US", subdivision: "US-CO", lat: 39.7392, lon: -104.9903, continent: "NA" },
  { id: "phx", city: "Phoenix", country: "US", subdivision: "US-AZ", lat: 33.4484, lon: -112.074, continent: "NA" },
  { id: "slc", city: "Salt Lake City", country: "US", subdivision: "US-UT", lat: 40.7608, lon: -111.891, continent: "NA" },
  { id: "las", city: "Las Vegas", country: "US", subdivision: "US-NV", lat: 36.1699, lon: -115.1398, continent: "NA" },
  { id: "lax", city: "Los Angeles", country: "US", subdivision: "US-CA", lat: 34.0522, lon: -118.2437, continent: "NA" },
  { id: "sjc", city: "San Jose", country: "US", subdivision: "US-CA", lat: 37.3382, lon: -121.8863, continent: "NA" },
  { id: "pdx", city: "Portland", country: "US", subdivision: "US-OR", lat: 45.5152, lon: -122.6784, continent: "NA" },
  { id: "sea", city: "Seattle", country: "US", subdivision: "US-WA", lat: 47.6062, lon: -122.3321, continent: "NA" },
  { id: "yyz", city: "Toronto", country: "CA", subdivision: "CA-ON", lat: 43.6532, lon: -79.3832, continent: "NA" },
  { id: "yul", city: "Montreal", country: "CA", subdivision: "CA-QC", lat: 45.5017, lon: -73.5673, continent: "NA" },
  { id: "yvr", city: "Vancouver", country: "CA", subdivision: "CA-BC", lat: 49.2827, lon: -123.1207, continent: "NA" },
  { id: "mex", city: "Mexico City", country: "MX", subdivision: "MX-CMX", lat: 19.4326, lon: -99.1332, continent: "NA" },
  { id: "qro", city: "Querétaro", country: "MX", subdivision: "MX-QUE", lat: 20.5888, lon: -100.3899, continent: "NA" },
  { id: "pty", city: "Panama City", country: "PA", lat: 8.9824, lon: -79.5199, continent: "NA" },
  { id: "hav", city: "Havana", country: "CU", lat: 23.1136, lon: -82.3666, continent: "NA" },

  // ---------------------------------------------------------------- South America
  { id: "gru", city: "São Paulo", country: "BR", subdivision: "BR-SP", lat: -23.5505, lon: -46.6333, continent: "SA" },
  { id: "gig", city: "Rio de Janeiro", country: "BR", subdivision: "BR-RJ", lat: -22.9068, lon: -43.1729, continent: "SA" },
  { id: "for", city: "Fortaleza", country: "BR", subdivision: "BR-CE", lat: -3.7319, lon: -38.5267, continent: "SA" },
  { id: "eze", city: "Buenos Aires", country: "AR", subdivision: "AR-C", lat: -34.6037, lon: -58.3816, continent: "SA" },
  { id: "scl", city: "Santiago", country: "CL", subdivision: "CL-RM", lat: -33.4489, lon: -70.6693, continent: "SA" },
  { id: "lim", city: "Lima", country: "PE", lat: -12.0464, lon: -77.0428, continent: "SA" },
  { id: "bog", city: "Bogotá", country: "CO", subdivision: "CO-DC", lat: 4.711, lon: -74.0721, continent: "SA" },
  { id: "uio", city: "Quito", country: "EC", lat: -0.1807, lon: -78.4678, continent: "SA" },
  { id: "mvd", city: "Montevideo", country: "UY", lat: -34.9011, lon: -56.1645, continent: "SA" },
  { id: "ccs", city: "Caracas", country: "VE", lat: 10.4806, lon: -66.9036, continent: "SA" },

  // ---------------------------------------------------------------- Europe
  { id: "lhr", city: "London", country: "GB", lat: 51.5074, lon: -0.1278, continent: "EU" },
  { id: "man", city: "Manchester", country: "GB", lat: 53.4808, lon: -2.2426, continent: "EU" },
  { id: "dub", city: "Dublin", country: "IE", lat: 53.3498, lon: -6.2603, continent: "EU" },
  { id: "kef", city: "Reykjavik", country: "IS", lat: 64.1466, lon: -21.9426, continent: "EU" },
  { id: "ams", city: "Amsterdam", country: "NL", lat: 52.3676, lon: 4.9041, continent: "EU" },
  { id: "bru", city: "Brussels", country: "BE", lat: 50.8503, lon: 4.3517, continent: "EU" },
  { id: "lux", city: "Luxembourg", country: "LU", lat: 49.6116, lon: 6.1319, continent: "EU" },
  { id: "cdg", city: "Paris", country: "FR", lat: 48.8566, lon: 2.3522, continent: "EU" },
  { id: "mrs", city: "Marseille", country: "FR", lat: 43.2965, lon: 5.3698, continent: "EU" },
  { id: "fra", city: "Frankfurt", country: "DE", subdivision: "DE-HE", lat: 50.1109, lon: 8.6821, continent: "EU" },
  { id: "muc", city: "Munich", country: "DE", subdivision: "DE-BY", lat: 48.1351, lon: 11.582, continent: "EU" },
  { id: "ber", city: "Berlin", country: "DE", subdivision: "DE-BE", lat: 52.52, lon: 13.405, continent: "EU" },
  { id: "ham", city: "Hamburg", country: "DE", subdivision: "DE-HH", lat: 53.5511, lon: 9.9937, continent: "EU" },
  { id: "zrh", city: "Zurich", country: "CH", subdivision: "CH-ZH", lat: 47.3769, lon: 8.5417, continent: "EU" },
  { id: "gva", city: "Geneva", country: "CH", subdivision: "CH-GE", lat: 46.2044, lon: 6.1432, continent: "EU" },
  { id: "vie", city: "Vienna", country: "AT", lat: 48.2082, lon: 16.3738, continent: "EU" },
  { id: "mxp", city: "Milan", country: "IT", lat: 45.4642, lon: 9.19, continent: "EU" },
  { id: "fco", city: "Rome", country: "IT", lat: 41.9028, lon: 12.4964, continent: "EU" },
  { id: "mad", city: "Madrid", country: "ES", subdivision: "ES-MD", lat: 40.4168, lon: -3.7038, continent: "EU" },
  { id: "bcn", city: "Barcelona", country: "ES", subdivision: "ES-CT", lat: 41.3874, lon: 2.1686, continent: "EU" },
  { id: "lis", city: "Lisbon", country: "PT", lat: 38.7223, lon: -9.1393, continent: "EU" },
  { id: "cph", city: "Copenhagen", country: "DK", lat: 55.6761, lon: 12.5683, continent: "EU" },
  { id: "osl", city: "Oslo", country: "NO", lat: 59.9139, lon: 10.7522, continent: "EU" },
  { id: "arn", city: "Stockholm", country: "SE", lat: 59.3293, lon: 18.0686, continent: "EU" },
  { id: "hel", city: "Helsinki", country: "FI", lat: 60.1699, lon: 24.9384, continent: "EU" },
  { id: "tll", city: "Tallinn", country: "EE", lat: 59.437, lon: 24.7536, continent: "EU" },
  { id: "rix", city: "Riga", country: "LV", lat: 56.9496, lon: 24.1052, continent: "EU" },
  { id: "vno", city: "Vilnius", country: "LT", lat: 54.6872, lon: 25.2797, continent: "EU" },
  { id: "waw", city: "Warsaw", country: "PL", lat: 52.2297, lon: 21.0122, continent: "EU" },
  { id: "prg", city: "Prague", country: "CZ", lat: 50.0755, lon: 14.4378, continent: "EU" },
  { id: "bud", city: "Budapest", country: "HU", lat: 47.4979, lon: 19.0402, continent: "EU" },
  { id: "beg", city: "Belgrade", country: "RS", lat: 44.7866, lon: 20.4489, continent: "EU" },
  { id: "otp", city: "Bucharest", country: "RO", lat: 44.4268, lon: 26.1025, continent: "EU" },
  { id: "sof", city: "Sofia", country: "BG", lat: 42.6977, lon: 23.3219, continent: "EU" },
  { id: "ath", city: "Athens", country: "GR", lat: 37.9838, lon: 23.7275, continent: "EU" },
  { id: "ist", city: "Istanbul", country: "TR", lat: 41.0082, lon: 28.9784, continent: "EU" },
  { id: "kbp", city: "Kyiv", country: "UA", subdivision: "UA-30", lat: 50.4501, lon: 30.5234, continent: "EU" },
  { id: "sip", city: "Simferopol", country: "UA", subdivision: "UA-43", lat: 44.9521, lon: 34.1024, continent: "EU" },
  { id: "dok", city: "Donetsk", country: "UA", subdivision: "UA-14", lat: 48.0159, lon: 37.8028, continent: "EU" },
  { id: "msq", city: "Minsk", country: "BY", lat: 53.9006, lon: 27.559, continent: "EU" },
  { id: "svo", city: "Moscow", country: "RU", subdivision: "RU-MOW", lat: 55.7558, lon: 37.6173, continent: "EU" },
  { id: "led", city: "Saint Petersburg", country: "RU", subdivision: "RU-SPE", lat: 59.9311, lon: 30.3609, continent: "EU" },

  // ---------------------------------------------------------------- Middle East
  { id: "dxb", city: "Dubai", country: "AE", subdivision: "AE-DU", lat: 25.2048, lon: 55.2708, continent: "AS" },
  { id: "auh", city: "Abu Dhabi", country: "AE", subdivision: "AE-AZ", lat: 24.4539, lon: 54.3773, continent: "AS" },
  { id: "doh", city: "Doha", country: "QA", lat: 25.2854, lon: 51.531, continent: "AS" },
  { id: "bah", city: "Manama", country: "BH", lat: 26.2285, lon: 50.586, continent: "AS" },
  { id: "ruh", city: "Riyadh", country: "SA", subdivision: "SA-01", lat: 24.7136, lon: 46.6753, continent: "AS" },
  { id: "jed", city: "Jeddah", country: "SA", subdivision: "SA-02", lat: 21.4858, lon: 39.1925, continent: "AS" },
  { id: "tlv", city: "Tel Aviv", country: "IL", subdivision: "IL-TA", lat: 32.0853, lon: 34.7818, continent: "AS" },
  { id: "amm", city: "Amman", country: "JO", lat: 31.9539, lon: 35.9106, continent: "AS" },
  { id: "ika", city: "Tehran", country: "IR", lat: 35.6892, lon: 51.389, continent: "AS" },

  // ---------------------------------------------------------------- Africa
  { id: "cai", city: "Cairo", country: "EG", lat: 30.0444, lon: 31.2357, continent: "AF" },
  { id: "cmn", city: "Casablanca", country: "MA", lat: 33.5731, lon: -7.5898, continent: "AF" },
  { id: "alg", city: "Algiers", country: "DZ", lat: 36.7538, lon: 3.0588, continent: "AF" },
  { id: "tun", city: "Tunis", country: "TN", lat: 36.8065, lon: 10.1815, continent: "AF" },
  { id: "dss", city: "Dakar", country: "SN", lat: 14.7167, lon: -17.4677, continent: "AF" },
  { id: "acc", city: "Accra", country: "GH", lat: 5.6037, lon: -0.187, continent: "AF" },
  { id: "los", city: "Lagos", country: "NG", subdivision: "NG-LA", lat: 6.5244, lon: 3.3792, continent: "AF" },
  { id: "add", city: "Addis Ababa", country: "ET", lat: 9.03, lon: 38.74, continent: "AF" },
  { id: "nbo", city: "Nairobi", country: "KE", lat: -1.2921, lon: 36.8219, continent: "AF" },
  { id: "kgl", city: "Kigali", country: "RW", lat: -1.9441, lon: 30.0619, continent: "AF" },
  { id: "dar", city: "Dar es Salaam", country: "TZ", lat: -6.7924, lon: 39.2083, continent: "AF" },
  { id: "lad", city: "Luanda", country: "AO", lat: -8.839, lon: 13.2894, continent: "AF" },
  { id: "jnb", city: "Johannesburg", country: "ZA", subdivision: "ZA-GP", lat: -26.2041, lon: 28.0473, continent: "AF" },
  { id: "cpt", city: "Cape Town", country: "ZA", subdivision: "ZA-WC", lat: -33.9249, lon: 18.4241, continent: "AF" },

  // ---------------------------------------------------------------- Asia
  { id: "nrt", city: "Tokyo", country: "JP", subdivision: "JP-13", lat: 35.6762, lon: 139.6503, continent: "AS" },
  { id: "kix", city: "Osaka", country: "JP", subdivision: "JP-27", lat: 34.6937, lon: 135.5023, continent: "AS" },
  { id: "fuk", city: "Fukuoka", country: "JP", subdivision: "JP-40", lat: 33.5904, lon: 130.4017, continent: "AS" },
  { id: "icn", city: "Seoul", country: "KR", subdivision: "KR-11", lat: 37.5665, lon: 126.978, continent: "AS" },
  { id: "pus", city: "Busan", country: "KR", subdivision: "KR-26", lat: 35.1796, lon: 129.0756, continent: "AS" },
  { id: "fnj", city: "Pyongyang", country: "KP", lat: 39.0392, lon: 125.7625, continent: "AS" },
  { id: "pek", city: "Beijing", country: "CN", subdivision: "CN-BJ", lat: 39.9042, lon: 116.4074, continent: "AS" },
  { id: "pvg", city: "Shanghai", country: "CN", subdivision: "CN-SH", lat: 31.2304, lon: 121.4737, continent: "AS" },
  { id: "szx", city: "Shenzhen", country: "CN", subdivision: "CN-GD", lat: 22.5431, lon: 114.0579, continent: "AS" },
  { id: "can", city: "Guangzhou", country: "CN", subdivision: "CN-GD", lat: 23.1291, lon: 113.2644, continent: "AS" },
  { id: "ctu", city: "Chengdu", country: "CN", subdivision: "CN-SC", lat: 30.5728, lon: 104.0668, continent: "AS" },
  { id: "hkg", city: "Hong Kong", country: "HK", lat: 22.3193, lon: 114.1694, continent: "AS" },
  { id: "mfm", city: "Macau", country: "MO", lat: 22.1987, lon: 113.5439, continent: "AS" },
  { id: "tpe", city: "Taipei", country: "TW", lat: 25.033, lon: 121.5654, continent: "AS" },
  { id: "mnl", city: "Manila", country: "PH", lat: 14.5995, lon: 120.9842, continent: "AS" },
  { id: "han", city: "Hanoi", country: "VN", lat: 21.0278, lon: 105.8342, continent: "AS" },
  { id: "sgn", city: "Ho Chi Minh City", country: "VN", lat: 10.8231, lon: 106.6297, continent: "AS" },
  { id: "bkk", city: "Bangkok", country: "TH", subdivision: "TH-10", lat: 13.7563, lon: 100.5018, continent: "AS" },
  { id: "kul", city: "Kuala Lumpur", country: "MY", subdivision: "MY-14", lat: 3.139, lon: 101.6869, continent: "AS" },
  { id: "sin", city: "Singapore", country: "SG", lat: 1.3521, lon: 103.8198, continent: "AS" },
  { id: "cgk", city: "Jakarta", country: "ID", subdivision: "ID-JK", lat: -6.2088, lon: 106.8456, continent: "AS" },
  { id: "bom", city: "Mumbai", country: "IN", subdivision: "IN-MH", lat: 19.076, lon: 72.8777, continent: "AS" },
  { id: "del", city: "Delhi", country: "IN", subdivision: "IN-DL", lat: 28.7041, lon: 77.1025, continent: "AS" },
  { id: "blr", city: "Bangalore", country: "IN", subdivision: "IN-KA", lat: 12.9716, lon: 77.5946, continent: "AS" },
  { id: "maa", city: "Chennai", country: "IN", subdivision: "IN-TN", lat: 13.0827, lon: 80.2707, continent: "AS" },
  { id: "ccu", city: "Kolkata", country: "IN", subdivision: "IN-WB", lat: 22.5726, lon: 88.3639, continent: "AS" },
  { id: "dac", city: "Dhaka", country: "BD", lat: 23.8103, lon: 90.4125, continent: "AS" },
  { id: "cmb", city: "Colombo", country: "LK", lat: 6.9271, lon: 79.8612, continent: "AS" },
  { id: "khi", city: "Karachi", country: "PK", lat: 24.8607, lon: 67.0011, continent: "AS" },
  { id: "ala", city: "Almaty", country: "KZ", lat: 43.222, lon: 76.8512, continent: "AS" },
  { id: "tas", city: "Tashkent", country: "UZ", lat: 41.2995, lon: 69.2401, continent: "AS" },

  // ---------------------------------------------------------------- Oceania
  { id: "syd", city: "Sydney", country: "AU", subdivision: "AU-NSW", lat: -33.8688, lon: 151.2093, continent: "OC" },
  { id: "mel", city: "Melbourne", country: "AU", subdivision: "AU-VIC", lat: -37.8136, lon: 144.9631, continent: "OC" },
  { id: "bne", city: "Brisbane", country: "AU", subdivision: "AU-QLD", lat: -27.4698, lon: 153.0251, continent: "OC" },
  { id: "adl", city: "Adelaide", country: "AU", subdivision: "AU-SA", lat: -34.9285, lon: 138.6007, continent: "OC" },
  { id: "per", city: "Perth", country: "AU", subdivision: "AU-WA", lat: -31.9505, lon: 115.8605, continent: "OC" },
  { id: "akl", city: "Auckland", country: "NZ", lat: -36.8485, lon: 174.7633, continent: "OC" },
  { id: "wlg", city: "Wellington", country: "NZ", lat: -41.2865, lon: 174.7762, continent: "OC" },
  { id: "gum", city: "Hagåtña", country: "GU", lat: 13.4443, lon: 144.7937, continent: "OC" },
  { id: "suv", city: "Suva", country: "FJ", lat: -18.1248, lon: 178.4501, continent: "OC" },
  { id: "pom", city: "Port Moresby", country: "PG", lat: -9.4438, lon: 147.1803, continent: "OC" },
];
