import t from 'tap'
import { formattedValuesOf, labelledColumns } from '../../src/sync/option-labels.ts'
import { splitChanges } from '../../src/dynamics/table-changes.ts'
import { mappedValues } from '../../src/background-sync/dynamics-to-marketo-delivery.ts'
import type { FieldMapping } from '../../src/sync/field-mapping.ts'

const F = '@OData.Community.Display.V1.FormattedValue'

const mapping = {
  deletedFlag: { marketoField: 'deleted' },
  fields: [
    { marketoField: 'leadSource', dataType: 'string', lead: 'leadsourcecode', contact: null, direction: 'both' },
    { marketoField: 'annualRevenue', dataType: 'currency', lead: 'revenue', contact: null, direction: 'both' }
  ]
} as unknown as FieldMapping

t.test('only columns mapped to a Marketo string take their label', async (t) => {
  t.same([...labelledColumns(mapping, 'lead')], ['leadsourcecode'])
  t.same([...labelledColumns(mapping, 'contact')], [])
})

t.test('formatted values are read from the annotations', async (t) => {
  t.same(formattedValuesOf({ leadsourcecode: 8, [`leadsourcecode${F}`]: 'Web', 'x@odata.etag': 'W/"1"' }), { leadsourcecode: 'Web' })
})

t.test('a changed row keeps the labels of its selected columns, and the delivery sends the option-set label only', async (t) => {
  const { upserted } = splitChanges([{
    leadid: 'A1', leadsourcecode: 8, [`leadsourcecode${F}`]: 'Web', revenue: 1000, [`revenue${F}`]: '$1,000.00', [`statecode${F}`]: 'Open'
  }], 'leadid', ['leadid', 'leadsourcecode', 'revenue'])
  t.same(upserted[0]?.labels, { leadsourcecode: 'Web', revenue: '$1,000.00' }, 'an unselected column\'s label is dropped')
  const fields = new Map([['leadsourcecode', 'leadSource'], ['revenue', 'annualRevenue']])
  t.same(mappedValues(upserted[0]!, fields, labelledColumns(mapping, 'lead')), { leadSource: 'Web', annualRevenue: 1000 }, 'an amount keeps its number')
  t.same(mappedValues({ ...upserted[0]!, labels: {} }, fields, labelledColumns(mapping, 'lead')), { leadSource: 8, annualRevenue: 1000 }, 'without a label the value stays')
})
